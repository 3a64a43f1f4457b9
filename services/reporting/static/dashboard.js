// Draws the dashboard's charts from the numbers the page already holds (#dashboard-data);
// without this script the tables beside each chart say the same.
(function () {
  "use strict";
  var source = document.getElementById("dashboard-data");
  if (!source || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  Chart.defaults.locale = "tr-TR";
  Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif";
  var blue = "#0a4a8f", green = "#135e2c", amber = "#b35c00";

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) { new Chart(canvas, config); }
  }

  draw("chart-trend", {
    type: "line",
    data: { labels: data.trend.labels, datasets: [
      { label: "Alınan / received", data: data.trend.received, borderColor: blue,
        backgroundColor: blue },
      { label: "Sonuçlanan / concluded", data: data.trend.concluded, borderColor: green,
        backgroundColor: green }] },
    options: { animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
  });
  draw("chart-categories", {
    type: "bar",
    data: { labels: data.categories.labels, datasets: [
      { label: "Başvuru / applications", data: data.categories.counts, backgroundColor: blue }] },
    options: { animation: false, indexAxis: "y",
               scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } }
  });
  draw("chart-sla", {
    type: "bar",
    data: { labels: data.sla.labels, datasets: [
      { label: "Okuma % / read %", data: data.sla.read, backgroundColor: blue },
      { label: "Çözüm % / resolve %", data: data.sla.resolve, backgroundColor: green }] },
    options: { animation: false, scales: { y: { beginAtZero: true, max: 100 } } }
  });
  draw("chart-backlog", {
    type: "bar",
    data: { labels: data.backlog.labels, datasets: [
      { label: "Açık / open", data: data.backlog.counts, backgroundColor: amber }] },
    options: { animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
  });
}());
