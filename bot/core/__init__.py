"""The base every layer imports: settings, the error hierarchy, data shapes, texts and languages, the rules for who may do what."""
