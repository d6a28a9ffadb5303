"""``mjbot demo``: the real bot against the proxy simulator and the Discord double, and a web page
that shows the double's channel as a member sees it (stage.py runs the three, web.py serves the
page, channel.py reads the double's records for it, cli.py is the command). Importing this package
loads nothing else: the command line imports cli.py at every start."""
