// The /data page: follow an import job's progress without reloading, and copy the snippet.
// Without this script the page reloads itself (a <noscript> refresh) until the job finishes.
(function () {
  "use strict";
  var box = document.getElementById("import-job");
  if (box) {
    var id = box.getAttribute("data-job-id");
    var field = function (name) { return box.querySelector('[data-field="' + name + '"]'); };
    var bar = box.querySelector("progress");
    var poll = function () {
      fetch("/api/v1/imports/" + encodeURIComponent(id), { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
        .then(function (job) {
          field("status").textContent = job.status;
          field("stage").textContent = job.stage || "";
          bar.value = job.percent;
          bar.textContent = job.percent + "%";
          var summary = field("summary");
          if (job.status === "done") {
            summary.innerHTML = "";
            var ok = document.createElement("span");
            ok.className = "good";
            ok.textContent = "Imported " + job.events_stored + " events from " + job.rows_done + " rows.";
            summary.appendChild(ok);
            summary.appendChild(document.createTextNode(" "));
            var map = document.createElement("a");
            map.href = "/map";
            map.textContent = "See the journey map";
            summary.appendChild(map);
          } else if (job.status === "failed") {
            summary.innerHTML = "";
            var bad = document.createElement("span");
            bad.className = "bad";
            bad.textContent = "Nothing was stored: " + job.error;
            summary.appendChild(bad);
          } else {
            summary.textContent = job.percent + "% of " + job.bytes_total + " bytes read";
            window.setTimeout(poll, 500);
          }
        })
        .catch(function () { window.setTimeout(poll, 2000); });
    };
    var status = field("status").textContent;
    if (status !== "done" && status !== "failed") { poll(); }
  }
  var copy = document.querySelector(".data-copy");
  if (copy && navigator.clipboard) {
    copy.hidden = false;
    copy.addEventListener("click", function () {
      var source = document.getElementById(copy.getAttribute("data-copy"));
      navigator.clipboard.writeText(source.textContent).then(function () {
        copy.textContent = "Copied";
      });
    });
  }
})();
