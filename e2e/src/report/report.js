// A vertical cursor with the world time under the mouse, on every chart of the page at once
// (charts on one page share their time axis).
(function () {
  var charts = Array.prototype.slice.call(document.querySelectorAll('svg.run-chart'));
  function show(x, t) {
    charts.forEach(function (svg) {
      var c = svg.querySelector('.cursor');
      if (!c) return;
      if (t === null) { c.setAttribute('visibility', 'hidden'); return; }
      var line = c.querySelector('line'), label = c.querySelector('text');
      line.setAttribute('x1', x); line.setAttribute('x2', x);
      label.setAttribute('x', x + 4);
      label.textContent = 't = ' + Math.round(t) + ' s';
      c.setAttribute('visibility', 'visible');
    });
  }
  charts.forEach(function (svg) {
    var x0 = +svg.dataset.x0, x1 = +svg.dataset.x1, tMax = +svg.dataset.tMax;
    svg.addEventListener('mousemove', function (e) {
      var p = svg.createSVGPoint();
      p.x = e.clientX; p.y = e.clientY;
      var at = p.matrixTransform(svg.getScreenCTM().inverse());
      if (at.x < x0 || at.x > x1) { show(0, null); return; }
      show(at.x, (at.x - x0) / (x1 - x0) * tMax);
    });
    svg.addEventListener('mouseleave', function () { show(0, null); });
  });
})();
