// Progressive enhancement only: every page works without this script.
// A form's buttons are disabled once it is sent, so a double click does
// not send an act twice (the desk refuses the second one anyway).
document.addEventListener("submit", function (ev) {
  var form = ev.target;
  if (!form || form.method.toLowerCase() !== "post") { return; }
  window.setTimeout(function () {
    var buttons = form.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = true; }
  }, 0);
});
