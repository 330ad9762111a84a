// The JSON API as the page calls it: form-encoded POSTs carrying `auth`, GETs and DELETEs with
// `Authorization: Bearer`. Every refusal becomes an ApiError whose message is a sentence; a
// refused login token ends the session. The page decides nothing: jars does.

const TOKEN = 'jars.token';
const USER = 'jars.user';

/** The login, kept in sessionStorage only: never in a URL, a cookie or localStorage. */
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN);
  },
  get user() {
    return sessionStorage.getItem(USER) || '';
  },
  start(token, user) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(USER, user);
  },
  end() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(USER);
  },
  /** The token's claims, to label the page (who, admin, until when); jars checks them. */
  claims() {
    return claimsOf(this.token);
  },
};

/** A JWT's claims, read without checking anything (jars checks): to label the page. */
export function claimsOf(token) {
  if (!token) return null;
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = part + '='.repeat((4 - (part.length % 4)) % 4);
    return JSON.parse(atob(padded));
  } catch {
    return null;
  }
}

const SIGN_IN_AGAIN = 'Please log in again.';

/** Each error name jars answers, as a sentence. */
const SENTENCES = {
  MissingArgumentError: 'A required field is missing.',
  InvalidArgumentError:
    'One of the values is not valid: check numbers, addresses, durations and lengths (255 characters at most).',
  InvalidTextRepresentation: 'Private must be yes or no.',
  StringDataRightTruncation: 'A title or description holds 255 characters at most.',
  InvalidIdentifierException: 'That is not an event id.',
  DecodeError: `Your login is not a token jars understands. ${SIGN_IN_AGAIN}`,
  InvalidSignatureError: `Your login was not signed by this station. ${SIGN_IN_AGAIN}`,
  ExpiredSignatureError: `Your login has expired. ${SIGN_IN_AGAIN}`,
  ImmatureSignatureError: `Your login is not valid yet (is this device's clock right?). ${SIGN_IN_AGAIN}`,
  InvalidIssuerError: `Your login was made by another service. ${SIGN_IN_AGAIN}`,
  InvalidAudienceError: `Your login was made for another service. ${SIGN_IN_AGAIN}`,
  InvalidAlgorithmError: `Your login is signed in a way jars refuses. ${SIGN_IN_AGAIN}`,
  InvalidTokenError: `That is a listener link, not a login. ${SIGN_IN_AGAIN}`,
  NoUserException: `Your account no longer exists. ${SIGN_IN_AGAIN}`,
  NoUserPermissionException: 'Your account may not use the station: ask an admin for access.',
  UnauthorizedConnectionException: "Only the event's owner or an admin may do that.",
  UnauthorisedException: 'You may not do that: it needs the owner or an admin.',
  NonExistentOrExpiredEventException: 'That event does not exist, has ended, or is not yours to see.',
  NoSuchEventException: 'That event does not exist.',
  NoSuchBanException: 'That ban does not exist (any more).',
  NoSuchSessionException: 'That listener is not connected any more.',
  TooManyRequests: 'Too many requests at once.',
  VerifyOnlyNode: 'This jars only checks logins; log in and make links on the station\'s main jars.',
  MyRadioServiceFailureException: 'The member database (MyRadio) did not answer. Try again in a moment.',
  ServiceUnavailable: 'jars is busy or cannot reach its event store. Try again in a moment.',
  PayloadTooLarge: 'That is too much text.',
  RequestTimeout: 'That took too long. Try again.',
  NotFound: 'This jars does not offer that yet (it may be older than this page expects).',
  NetworkError: 'jars could not be reached: check the connection, then try again.',
};

/** A refusal (or failure) of an API call, its message a sentence for people. */
export class ApiError extends Error {
  constructor(code, status, retryAfter) {
    let text = SENTENCES[code] || `jars refused that (${code}, HTTP ${status}).`;
    if (code === 'TooManyRequests' && retryAfter) {
      text = `Too many requests: try again in ${retryAfter} s.`;
    }
    super(text);
    this.code = code;
    this.status = status;
  }
}

let sessionOver = () => {};

/** `f(error)` runs whenever jars refuses the login token (401): the session is over. */
export function onSessionOver(f) {
  sessionOver = f;
}

async function call(method, path, { form, bearer, login } = {}) {
  const headers = { Accept: 'application/json' };
  if (bearer) {
    headers.Authorization = `Bearer ${session.token}`;
  }
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: form ? new URLSearchParams(form) : undefined,
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    });
  } catch {
    throw new ApiError('NetworkError', 0);
  }
  let body = null;
  const text = await resp.text().catch(() => '');
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!resp.ok) {
    const code = body && typeof body.error === 'string' ? body.error : `HTTP${resp.status}`;
    if (login && code === 'NoUserException') {
      const e = new ApiError(code, resp.status);
      e.message = 'Wrong user name or password.';
      throw e;
    }
    const e = new ApiError(code, resp.status, resp.headers.get('Retry-After'));
    if (resp.status === 401 && !login) {
      session.end();
      sessionOver(e);
    }
    throw e;
  }
  return { body, headers: resp.headers, status: resp.status };
}

/** The API calls of the page. */
export const api = {
  /** `/ui/config.json`: the public addresses the page shows. */
  async config() {
    return (await call('GET', '/ui/config.json')).body;
  },
  /** `POST /jars/token`: a login token (a 401 here is wrong credentials, not a lost session). */
  async login(user, password) {
    return (await call('POST', '/jars/token', { form: { user, password }, login: true })).body.token;
  },
  /** A form-encoded POST with the login token as `auth`. */
  post(path, fields = {}) {
    const form = session.token ? { ...fields, auth: session.token } : fields;
    return call('POST', path, { form });
  },
  /** A GET without the login token: what any visitor is shown. */
  getPublic(path) {
    return call('GET', path, {});
  },
  /** A GET with the login token (if any) as a Bearer header. */
  get(path) {
    return call('GET', path, { bearer: Boolean(session.token) });
  },
  /** A DELETE with the login token as a Bearer header. */
  del(path) {
    return call('DELETE', path, { bearer: true });
  },
};
