// Live parts: every few seconds, fetch this same page's live fragment and put it in place. Pauses
// while the tab is hidden; stops if the session ended (the server answers 401).
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !live.dataset.refresh) return;
  var every = Math.max(1, Number(live.dataset.refresh)) * 1000;
  function refresh() {
    if (document.hidden) return schedule();
    fetch(location.href, { headers: { "X-Admin-Fragment": "1" }, credentials: "same-origin" })
      .then(function (answer) {
        if (answer.status === 401) { location.reload(); return null; }
        return answer.ok ? answer.text() : null;
      })
      .then(function (html) { if (html !== null && html !== undefined) live.innerHTML = html; })
      .catch(function () {})
      .then(schedule);
  }
  function schedule() { setTimeout(refresh, every); }
  schedule();
})();
