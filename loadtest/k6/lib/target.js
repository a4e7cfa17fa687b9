// Where the suites send their traffic, and the guard that keeps it on this machine.
//
// Load suites must never reach a shared or remote system by accident (a stray INGRESS_URL
// in a shell is enough), so any address other than loopback stops the run before the
// first request.

const LOOPBACK_URL = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?$/;

export const INGRESS_URL = loopbackOnly(__ENV.INGRESS_URL || 'http://127.0.0.1:8080');

function loopbackOnly(url) {
  const trimmed = url.replace(/\/+$/, '');
  if (!LOOPBACK_URL.test(trimmed)) {
    throw new Error(`INGRESS_URL must be a loopback address like http://127.0.0.1:8080, not ${url}`);
  }
  return trimmed;
}

// Numbers and durations the suites take from the environment, with the suite's default.
export function envNumber(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, not ${raw}`);
  return value;
}

export function envDuration(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^(\d+(ms|s|m|h))+$/.test(raw)) throw new Error(`${name} must be a duration like 90s or 10m, not ${raw}`);
  return raw;
}
