// Draw each .app-diagram__canvas's BPMN file with bpmn-js's navigated viewer (window.BpmnJS, from
// /assets/bpmn-viewer.js) and mark the flow nodes named in its data-marks. The outcome is left on the
// element for people and tests: data-state="shown" (data-warnings: how many import warnings) or "failed".
(function () {
  "use strict";
  function show(el) {
    var viewer = new window.BpmnJS({ container: el, height: 420 });
    var marks = JSON.parse(el.getAttribute("data-marks") || "{}");
    fetch(el.getAttribute("data-bpmn-url"), { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("the diagram could not be loaded (" + r.status + ")");
        return r.text();
      })
      .then(function (xml) { return viewer.importXML(xml); })
      .then(function (result) {
        var canvas = viewer.get("canvas");
        var registry = viewer.get("elementRegistry");
        Object.keys(marks).forEach(function (kind) {
          marks[kind].forEach(function (id) {
            if (registry.get(id)) canvas.addMarker(id, "app-bpmn--" + kind);
          });
        });
        canvas.zoom("fit-viewport");
        var current = (marks.current || [])[0];
        if (current && registry.get(current)) canvas.scrollToElement(registry.get(current));
        el.setAttribute("data-warnings", String(result.warnings.length));
        el.setAttribute("data-state", "shown");
      })
      .catch(function (err) {
        el.setAttribute("data-state", "failed");
        el.textContent = "The diagram could not be shown: " + err.message;
      });
  }
  document.querySelectorAll(".app-diagram__canvas").forEach(show);
})();
