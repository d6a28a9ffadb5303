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
      .then(function (html) { if (html !== null && !typing()) channel.innerHTML = html; })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  setInterval(refresh, 1000);
})();
