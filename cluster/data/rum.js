/* Managed real-user monitoring: sessions, page loads and user actions.
 *
 * Served by every node at /rum.js?app=APP&token=INGEST_TOKEN; the node writes the application's
 * privacy settings into CONFIG below. Privacy rules this script keeps:
 * - Do Not Track (navigator.doNotTrack === "1"): with the choice "anonymous" the session is
 *   anonymous (no cookie, no user tag, kept in memory for this page only); with "nothing"
 *   nothing is captured at all.
 * - Opt-in mode: nothing is captured and no cookie is set until the page calls
 *   managedRum.enable(); managedRum.disable() stops capture and removes the cookie. A visitor
 *   who enabled capture before keeps it (the cookie says so) until disable().
 * - Input values are never read: a click names the element by its tag, role or visible label,
 *   never by what was typed; key presses and form values are not listened to.
 */
(function () {
  "use strict";
  var CONFIG = __CONFIG__;
  var COOKIE = "mrum_session";
  var w = window, d = document, nav = navigator;
  var dnt = nav.doNotTrack === "1" || w.doNotTrack === "1" || nav.msDoNotTrack === "1";
  var session = null;
  var userTag = null;
  var consent = false;
  var disabled = false;

  function readCookie() {
    var parts = d.cookie ? d.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === COOKIE) return parts[i].slice(eq + 1) || null;
    }
    return null;
  }
  function writeCookie(value) {
    var secure = location.protocol === "https:" ? "; Secure" : "";
    d.cookie = COOKIE + "=" + value + "; path=/; max-age=1800; SameSite=Lax" + secure;
  }
  function removeCookie() {
    d.cookie = COOKIE + "=; path=/; max-age=0; SameSite=Lax";
  }
  function randomId() {
    var bytes = new Uint8Array(16);
    (w.crypto || w.msCrypto).getRandomValues(bytes);
    var out = "";
    for (var i = 0; i < bytes.length; i++) out += ("0" + bytes[i].toString(16)).slice(-2);
    return out;
  }
  function capturing() {
    if (disabled) return false;
    if (dnt && CONFIG.dnt === "nothing") return false;
    if (CONFIG.optIn && !consent) return false;
    return true;
  }
  function sessionId() {
    if (!session) session = (!dnt && readCookie()) || randomId();
    if (!dnt) writeCookie(session); // anonymous sessions keep no cookie
    return session;
  }
  function send(event) {
    if (!capturing()) return;
    var beacon = {
      token: CONFIG.token,
      app: CONFIG.app,
      session: sessionId(),
      dnt: dnt,
      consent: consent,
      user_tag: dnt ? null : userTag,
      events: [event]
    };
    try {
      w.fetch(CONFIG.endpoint, {
        method: "POST",
        body: JSON.stringify(beacon),
        headers: { "Content-Type": "text/plain" },
        keepalive: true,
        credentials: "omit",
        mode: "cors"
      })["catch"](function () {});
    } catch (e) {
      /* monitoring never breaks the page */
    }
  }
  function pageLoad() {
    var timing = w.performance && w.performance.timing;
    var took = timing && timing.loadEventStart > 0 ? timing.loadEventStart - timing.navigationStart : null;
    send({ type: "load", at: Date.now(), name: "page load", page: location.href, duration_ms: took });
  }
  function label(el) {
    var tag = (el.tagName || "element").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") {
      // Never the value (a password above all): only what kind of field it is.
      return tag + (el.type ? "[" + el.type + "]" : "");
    }
    var text = (el.getAttribute && (el.getAttribute("aria-label") || el.getAttribute("title"))) ||
      (tag === "button" || tag === "a" ? (el.textContent || "").replace(/\s+/g, " ").trim() : "");
    return text ? tag + " '" + text.slice(0, 60) + "'" : tag + (el.id ? "#" + el.id : "");
  }
  d.addEventListener("click", function (e) {
    var el = e.target && e.target.closest ? e.target.closest("a,button,input,select,textarea,[role=button]") || e.target : e.target;
    if (!el) return;
    send({ type: "action", at: Date.now(), name: "click on " + label(el), page: location.href, duration_ms: null });
  }, true);

  w.managedRum = {
    enable: function () {
      if (consent && !disabled) return;
      consent = true;
      disabled = false;
      sessionId();
      send({ type: "action", at: Date.now(), name: "monitoring enabled", page: location.href, duration_ms: null });
    },
    disable: function () {
      consent = false;
      disabled = true;
      session = null;
      removeCookie();
    },
    identify: function (tag) {
      userTag = CONFIG.userTags && typeof tag === "string" ? tag.slice(0, 256) : null;
    },
    capturing: capturing
  };
  if (CONFIG.optIn && !dnt && readCookie()) consent = true; // enabled on an earlier page
  if (d.readyState === "complete") pageLoad();
  else w.addEventListener("load", pageLoad);
})();
