/* A Worker for pages opened from the file system (file://), where browsers refuse to start one:
   the worker's script runs in a hidden iframe of the page's own origin instead, with postMessage
   and the "message" event bridged both ways. The site's search runs in such a worker. This does
   what the offline plugin's iframe-worker shim does, kept here so that nothing is fetched. */
(function () {
  "use strict";
  if (location.protocol !== "file:") return;

  class IFrameWorker extends EventTarget {
    constructor(url) {
      super();
      this.onmessage = null;
      this.onerror = null;
      this._queue = [];
      this._ready = false;
      this._frame = document.createElement("iframe");
      this._frame.hidden = true;
      this._frame.setAttribute("aria-hidden", "true");
      this._frame.tabIndex = -1;
      (document.body || document.documentElement).appendChild(this._frame);
      const scope = this._frame.contentWindow;
      // Inside the worker, postMessage(data) answers the page.
      scope.postMessage = (data) => this._emit(new MessageEvent("message", { data: data }));
      const script = scope.document.createElement("script");
      script.src = new URL(url, location.href).href;
      script.onload = () => {
        this._ready = true;
        this._queue.splice(0).forEach((data) => this._deliver(data));
      };
      script.onerror = () => this._emit(new ErrorEvent("error", { message: "cannot load " + url }));
      scope.document.head.appendChild(script);
    }

    _emit(event) {
      this.dispatchEvent(event);
      const handler = event.type === "message" ? this.onmessage : this.onerror;
      if (typeof handler === "function") handler.call(this, event);
    }

    _deliver(data) {
      const scope = this._frame.contentWindow;
      if (scope) scope.dispatchEvent(new scope.MessageEvent("message", { data: data }));
    }

    postMessage(data) {
      if (this._ready) this._deliver(data);
      else this._queue.push(data);
    }

    terminate() {
      this._frame.remove();
    }
  }

  window.Worker = IFrameWorker;
})();
