// Draw each .app-diagram__canvas's BPMN file with bpmn-js's navigated viewer (window.BpmnJS, from
// /assets/bpmn-viewer.js) and mark the flow nodes named in its data-marks. The outcome is left on the
// element for people and tests: data-state="shown" (data-warnings: how many import warnings) or "failed".
(function () {
  "use strict";
  function show(el) {
    var viewer = new window.BpmnJS({ container: el, height: 520 });
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
        var current = (marks.current || [])[0];
        var shape = current && registry.get(current);
        if (shape) {
          // an escalation's ladder (tall, with its lanes): the stages marked, at a size to read, or where
          // it is when they are too far apart for that
          var marked = [];
          Object.keys(marks).forEach(function (kind) {
            marks[kind].forEach(function (id) { if (registry.get(id)) marked.push(registry.get(id)); });
          });
          var left = Math.min.apply(null, marked.map(function (s) { return s.x; })) - 60;
          var top = Math.min.apply(null, marked.map(function (s) { return s.y; })) - 160;
          var right = Math.max.apply(null, marked.map(function (s) { return s.x + s.width; })) + 60;
          var bottom = Math.max.apply(null, marked.map(function (s) { return s.y + s.height; })) + 120;
          var size = canvas.getSize();
          var fit = Math.min(size.width / (right - left), size.height / (bottom - top), 0.7);
          var scale = Math.max(fit, 0.35);
          var cx = fit < 0.35 ? shape.x + shape.width / 2 : (left + right) / 2;
          var cy = fit < 0.35 ? shape.y + shape.height / 2 : (top + bottom) / 2;
          canvas.viewbox({
            x: cx - size.width / scale / 2,
            y: cy - size.height / scale / 2,
            width: size.width / scale,
            height: size.height / scale
          });
        } else {
          canvas.zoom("fit-viewport");
        }
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
