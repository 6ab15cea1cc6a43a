// doorman's passkey ceremonies, the only script it serves: buttons marked data-passkey =
// "register" (on /security), "login" (on /login and /login/verify) or "sudo" (on /sudo).
// The server sends WebAuthn options as JSON with base64url binary fields; this turns them into
// the ArrayBuffers the browser wants, and the browser's answer back into JSON.
"use strict";

(function () {
  function toBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    return Uint8Array.from(atob(base64), function (c) { return c.charCodeAt(0); }).buffer;
  }

  function toText(buffer) {
    var binary = "";
    new Uint8Array(buffer).forEach(function (b) { binary += String.fromCharCode(b); });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(options) {
    var key = options.publicKey;
    key.challenge = toBuffer(key.challenge);
    key.user.id = toBuffer(key.user.id);
    (key.excludeCredentials || []).forEach(function (c) { c.id = toBuffer(c.id); });
    return { publicKey: key };
  }

  function requestOptions(options) {
    var key = options.publicKey;
    key.challenge = toBuffer(key.challenge);
    (key.allowCredentials || []).forEach(function (c) { c.id = toBuffer(c.id); });
    return { publicKey: key };
  }

  function registration(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: toText(response.attestationObject),
        clientDataJSON: toText(response.clientDataJSON),
        transports: response.getTransports ? response.getTransports() : undefined
      },
      extensions: credential.getClientExtensionResults()
    };
  }

  function assertion(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: {
        authenticatorData: toText(response.authenticatorData),
        clientDataJSON: toText(response.clientDataJSON),
        signature: toText(response.signature),
        userHandle: response.userHandle ? toText(response.userHandle) : null
      },
      extensions: credential.getClientExtensionResults()
    };
  }

  // The page's CSRF token: the first form's (the session's when signed in, else the browser's).
  function csrfToken() {
    var field = document.querySelector("input[name=csrf_token]");
    return field ? field.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      // Sent to /sudo (the session must authenticate again): go there.
      if (response.redirected) {
        window.location.assign(response.url);
        return new Promise(function () {});
      }
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new Error(data.error || "That did not work. Reload the page and try again.");
        return data;
      });
    });
  }

  var ceremonies = {
    register: function () {
      var name = document.getElementById("passkey-name");
      var label = name && name.value.trim();
      if (!label) {
        return Promise.reject(new Error("Give the passkey a name first."));
      }
      return post("/security/passkeys/register/start").then(function (started) {
        return navigator.credentials.create(creationOptions(started.options)).then(function (credential) {
          return post("/security/passkeys/register/finish", {
            ceremony: started.ceremony, name: label, credential: registration(credential)
          });
        });
      });
    },
    login: function (button) {
      return post("/login/passkey/start").then(function (started) {
        return navigator.credentials.get(requestOptions(started.options)).then(function (credential) {
          return post("/login/passkey/finish", {
            ceremony: started.ceremony, credential: assertion(credential), next: button.dataset.next
          });
        });
      });
    },
    sudo: function (button) {
      return post("/sudo/passkey/start").then(function (started) {
        return navigator.credentials.get(requestOptions(started.options)).then(function (credential) {
          return post("/sudo/passkey/finish", {
            ceremony: started.ceremony, credential: assertion(credential), next: button.dataset.next
          });
        });
      });
    }
  };

  document.querySelectorAll("button[data-passkey]").forEach(function (button) {
    var status = button.parentElement.querySelector("[data-passkey-status]");
    if (!window.PublicKeyCredential) {
      button.disabled = true;
      if (status) status.textContent = "This browser does not support passkeys.";
      return;
    }
    button.addEventListener("click", function () {
      var ceremony = ceremonies[button.dataset.passkey];
      if (!ceremony) return;
      button.disabled = true;
      if (status) status.textContent = "Waiting for your passkey…";
      ceremony(button).then(function (done) {
        window.location.assign(done.next || window.location.pathname);
      }).catch(function (error) {
        button.disabled = false;
        if (status) {
          status.textContent = error && error.name === "NotAllowedError"
            ? "The passkey request was cancelled or timed out."
            : (error && error.message) || "That did not work.";
        }
      });
    });
  });
})();
