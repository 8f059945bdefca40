// The ja4 challenge: find a counter c such that SHA-256(nonce ":" c) starts with `bits` zero
// bits, then go to the verify address, which sets the pass cookie and sends the browser back.
// SHA-256 is written out (FIPS 180-4) so the page works without a secure context.
(function () {
  var cfg = document.getElementById("ja4c").dataset;
  var K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ];
  var W = new Int32Array(64);
  function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }
  // SHA-256 of an ASCII string, as eight 32-bit words.
  function sha256(s) {
    var len = s.length, words = ((len + 9 + 63) >> 6) << 4, m = new Int32Array(words), i, j, t;
    for (i = 0; i < len; i++) m[i >> 2] |= s.charCodeAt(i) << (24 - (i & 3) * 8);
    m[len >> 2] |= 0x80 << (24 - (len & 3) * 8);
    m[words - 1] = len * 8;
    var h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    for (j = 0; j < words; j += 16) {
      for (t = 0; t < 16; t++) W[t] = m[j + t];
      for (t = 16; t < 64; t++) {
        var a15 = W[t - 15], a2 = W[t - 2];
        var s0 = rotr(a15, 7) ^ rotr(a15, 18) ^ (a15 >>> 3);
        var s1 = rotr(a2, 17) ^ rotr(a2, 19) ^ (a2 >>> 10);
        W[t] = (W[t - 16] + s0 + W[t - 7] + s1) | 0;
      }
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
      for (t = 0; t < 64; t++) {
        var t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + W[t]) | 0;
        var t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h = [(h[0] + a) | 0, (h[1] + b) | 0, (h[2] + c) | 0, (h[3] + d) | 0,
           (h[4] + e) | 0, (h[5] + f) | 0, (h[6] + g) | 0, (h[7] + k) | 0];
    }
    return h;
  }
  function zeroBits(h) {
    for (var i = 0, z = 0; i < 8; i++) {
      if (h[i] !== 0) return z + Math.clz32(h[i]);
      z += 32;
    }
    return z;
  }
  var bits = +cfg.bits, prefix = cfg.nonce + ":", n = 0;
  function work() {
    for (var end = n + 20000; n < end; n++) {
      if (zeroBits(sha256(prefix + n)) >= bits) {
        location.replace(cfg.verify + n);
        return;
      }
    }
    setTimeout(work, 0);
  }
  work();
})();
