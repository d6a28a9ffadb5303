// The command box shows the chosen command's options; the channel refreshes every second.
(function () {
  "use strict";
  var picker = document.getElementById("command");
  function showOptions() {
    document.querySelectorAll("fieldset.options").forEach(function (set) {
      var mine = set.dataset.command === picker.value;
      set.hidden = !mine;
      set.disabled = !mine;
    });
  }
  if (picker) { picker.addEventListener("change", showOptions); showOptions(); }
  var channel = document.getElementById("channel");
  if (!channel) return;
  var busy = false;
  function typing() {
    var active = document.activeElement;
    return active && channel.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
  }
  function refresh() {
    if (busy || document.hidden || typing()) return;
    busy = true;
    fetch("/channel?as=" + encodeURIComponent(channel.dataset.as), { cache: "no-store" })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (html === null || typing()) return;
        // A modal being filled in stays as it is (its text included) while it is the same one.
        var modal = document.getElementById("modal");
        channel.innerHTML = html;
        var fresh = document.getElementById("modal");
        if (modal && fresh && fresh.dataset.interaction === modal.dataset.interaction) fresh.replaceWith(modal);
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  setInterval(refresh, 1000);
})();
