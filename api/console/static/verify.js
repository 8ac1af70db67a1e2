// verify.js checks an audit entry's inclusion in the browser, against a
// checkpoint the auditor holds (pinned in localStorage, or pasted): a
// check made only by the server being audited proves nothing.
//
// RFC 6962 / RFC 9162: leaf = SHA-256(0x00 || entry), node =
// SHA-256(0x01 || left || right). The checkpoint is a C2SP signed note
// (origin, size, base64 root); its Ed25519 signature is checked with
// WebCrypto where the browser has Ed25519.
"use strict";
(() => {
  const box = document.getElementById("browser-check");
  if (!box) return;
  const verdict = document.getElementById("browser-verdict");
  const pinKey = "docket-checkpoint:" + location.host;
  const enc = new TextEncoder();
  const b64 = s => Uint8Array.from(atob(s), c => c.charCodeAt(0));
  const cat = (...parts) => { const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0)); let i = 0; for (const p of parts) { out.set(p, i); i += p.length; } return out; };
  const sha = async b => new Uint8Array(await crypto.subtle.digest("SHA-256", b));
  const leafHash = d => sha(cat(new Uint8Array([0]), d));
  const node = (l, r) => sha(cat(new Uint8Array([1]), l, r));
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const say = (text, ok) => { verdict.textContent = text; verdict.className = ok === true ? "verify-ok" : ok === false ? "verify-bad" : ""; };

  // parseNote reads a checkpoint note: its text (what is signed), origin, size and root.
  const parseNote = note => {
    const cut = note.indexOf("\n\n");
    if (cut < 0) throw new Error("the checkpoint is not a signed note");
    const text = note.slice(0, cut + 1), lines = text.split("\n");
    if (lines.length < 4 || !/^\d+$/.test(lines[1])) throw new Error("the checkpoint's body is malformed");
    const sigs = note.slice(cut + 2).split("\n").filter(l => l.startsWith("\u2014 "));
    return { text, origin: lines[0], size: Number(lines[1]), root: b64(lines[2]), sigs };
  };

  // signed says whether a note carries a valid signature by key ("name+hash+base64"),
  // or null when the browser has no Ed25519.
  let noEd25519 = "";
  const signed = async (cp, key) => {
    // The base64 may itself hold "+": only the first two split.
    const i = key.indexOf("+"), j = key.indexOf("+", i + 1);
    const name = key.slice(0, i), hash = key.slice(i + 1, j), pub = key.slice(j + 1);
    const raw = b64(pub);
    if (raw[0] !== 1) return false;
    let k;
    try { k = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]); } catch (e) { noEd25519 = e.name; return null; }
    for (const line of cp.sigs) {
      const [, who, sig] = line.split(" ");
      const blob = b64(sig);
      const id = [...blob.slice(0, 4)].map(x => x.toString(16).padStart(2, "0")).join("");
      if (who === name && id === hash &&
        await crypto.subtle.verify({ name: "Ed25519" }, k, blob.slice(4), enc.encode(cp.text))) return true;
    }
    return false;
  };

  // rootOf is RFC 9162 2.1.3.2: the root an inclusion proof leads to.
  const rootOf = async (index, size, leaf, proof) => {
    if (index >= size) throw new Error("the index is beyond the tree");
    let fn = index, sn = size - 1, r = leaf;
    for (const p of proof) {
      if (sn === 0) throw new Error("the proof is too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await node(p, r);
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await node(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("the proof is too short");
    return r;
  };

  // consistent is RFC 9162 2.1.4.2: the tree of size m (root a) is a prefix of the tree of size n (root b).
  const consistent = async (m, a, n, b, proof) => {
    if (m === n) return proof.length === 0 && equal(a, b);
    if (m === 0) return true;
    if (m > n || proof.length === 0 && (m & (m - 1)) !== 0) return false;
    const c = (m & (m - 1)) === 0 ? [a, ...proof] : proof;
    let fn = m - 1, sn = n - 1;
    while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    let fr = c[0], sr = c[0];
    for (const p of c.slice(1)) {
      if (sn === 0) return false;
      if (fn % 2 === 1 || fn === sn) {
        fr = await node(p, fr); sr = await node(p, sr);
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        sr = await node(sr, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 && equal(fr, a) && equal(sr, b);
  };

  const check = async held => {
    const key = box.dataset.key, latest = parseNote(box.dataset.note);
    const index = Number(box.dataset.index);
    const proof = box.dataset.proof.split(" ").filter(Boolean).map(b64);
    const notes = [];
    const sigLatest = await signed(latest, key);
    if (sigLatest === false) return say("NOT verified: the server's checkpoint is not signed by the log's key.", false);
    notes.push(sigLatest ? "the checkpoint's signature is valid" : "this browser cannot check Ed25519 signatures (" + noEd25519 + ")");
    const root = await rootOf(index, latest.size, await leafHash(b64(box.dataset.entry)), proof);
    if (!equal(root, latest.root)) return say("NOT verified: the proof does not lead to the checkpoint's root.", false);
    if (held.origin !== latest.origin) return say("NOT verified: the checkpoint you hold is of another log (" + held.origin + ").", false);
    if (await signed(held, key) === false) return say("NOT verified: the checkpoint you hold is not signed by the log's key.", false);
    if (held.size > latest.size) return say("NOT verified: the server's checkpoint (size " + latest.size + ") is older than the one you hold (size " + held.size + ").", false);
    let proofC = [];
    if (held.size !== latest.size) {
      const res = await fetch("/ui/audit/consistency?from=" + held.size + "&to=" + latest.size, { credentials: "same-origin" });
      if (!res.ok) return say("NOT verified: the server gave no consistency proof (" + res.status + ").", false);
      proofC = (await res.json()).hashes.map(b64);
    }
    if (!await consistent(held.size, held.root, latest.size, latest.root, proofC))
      return say("NOT verified: the server's checkpoint does not extend the one you hold: the log was rewritten.", false);
    say("Verified in this browser: entry " + index + " is included in the checkpoint of size " + latest.size +
      ", which extends the checkpoint of size " + held.size + " you hold; " + notes.join("; ") + ".", true);
    return true;
  };

  const run = async note => {
    try { if (await check(parseNote(note)) === true) localStorage.setItem(pinKey, box.dataset.note); } // the newer checkpoint is held from now on
    catch (e) { say("NOT verified: " + e.message, false); }
  };

  document.getElementById("pin-controls").hidden = false;
  document.getElementById("pin-latest").addEventListener("click", () => run(box.dataset.note));
  document.getElementById("use-pasted").addEventListener("click", () => run(document.getElementById("pasted-checkpoint").value.replace(/\r\n/g, "\n")));
  const pinned = localStorage.getItem(pinKey);
  if (pinned) run(pinned);
  else say("No checkpoint is pinned in this browser yet: pin the server's latest (trust on first use) or paste one you hold.");
})();
