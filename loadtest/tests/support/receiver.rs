//! A partner's webhook endpoint for tests: a hyper server on loopback that checks each
//! delivery's signature on its own (HMAC-SHA256 over the documented canonical string,
//! computed here with `hmac` and `sha2`, not with the code that signs), records what it
//! accepted, and misbehaves on request: answers from a script (500, 429 with
//! `Retry-After`, slowness), one status for every delivery for a while (410, 500), or
//! being down (its port closed, then opened again). It speaks http, or https with a
//! certificate made for the run.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::net::TcpSocket;
use tokio::task::JoinSet;
use tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// One scripted answer, given instead of 200 to the next delivery.
#[derive(Clone, Debug)]
pub enum Answer {
    Status(u16),
    /// 429 with `Retry-After: seconds`.
    TooMany(u64),
    /// Sleep this long, then 200.
    Slow(Duration),
}

/// A delivery the receiver accepted (answered 2xx).
#[derive(Clone, Debug)]
pub struct Delivery {
    pub partner: String,
    pub delivery_id: String,
    pub attempt: u32,
    pub decision: Value,
    /// When the 2xx was answered.
    pub answered_at: Instant,
}

#[derive(Default)]
struct State {
    secrets: HashMap<String, String>,
    scripts: HashMap<String, VecDeque<Answer>>,
    /// Partners whose deliveries are all answered with this status for now.
    refusing: HashMap<String, u16>,
    accepted: Vec<Delivery>,
    /// Each signed request's delivery id and arrival, accepted or not.
    arrivals: Vec<(String, Instant)>,
    requests: usize,
    bad_signatures: usize,
}

pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: Option<JoinSet<()>>,
    /// Set when the receiver speaks https: its certificate's PEM, for the sender to trust.
    tls: Option<(TlsAcceptor, String)>,
}

impl Receiver {
    /// A receiver for `partners` (id, signing secret), each at `/hooks/{id}`.
    pub async fn start(partners: &[(&str, impl AsRef<str>)]) -> Receiver {
        Self::start_with(partners, None).await
    }

    /// The same over https, with a self-signed certificate for `localhost` made now
    /// ([`Receiver::certificate_pem`] is what a client must trust).
    pub async fn start_tls(partners: &[(&str, impl AsRef<str>)]) -> Receiver {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let pem = made.cert.pem();
        let key = PrivatePkcs8KeyDer::from(made.key_pair.serialize_der());
        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![made.cert.der().clone()], key.into())
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        Self::start_with(partners, Some((acceptor, pem))).await
    }

    pub fn certificate_pem(&self) -> &str {
        &self.tls.as_ref().expect("an https receiver").1
    }

    async fn start_with(
        partners: &[(&str, impl AsRef<str>)],
        tls: Option<(TlsAcceptor, String)>,
    ) -> Receiver {
        let state = State {
            secrets: partners
                .iter()
                .map(|(id, secret)| ((*id).to_owned(), secret.as_ref().to_owned()))
                .collect(),
            ..State::default()
        };
        let mut receiver = Receiver {
            addr: "127.0.0.1:0".parse().unwrap(),
            state: Arc::new(Mutex::new(state)),
            server: None,
            tls,
        };
        receiver.up().await;
        receiver
    }

    pub fn url(&self, partner: &str) -> String {
        match self.tls {
            None => format!("http://{}/hooks/{partner}", self.addr),
            Some(_) => format!("https://localhost:{}/hooks/{partner}", self.addr.port()),
        }
    }

    /// Answers the next deliveries to `partner` with `answers`, in order, then 200 again.
    pub fn script(&self, partner: &str, answers: impl IntoIterator<Item = Answer>) {
        self.state()
            .scripts
            .entry(partner.to_owned())
            .or_default()
            .extend(answers);
    }

    /// Answers every delivery to `partner` with `status` (410 Gone, 500…) until
    /// [`Receiver::welcome_back`].
    pub fn refuse(&self, partner: &str, status: u16) {
        self.state().refusing.insert(partner.to_owned(), status);
    }

    pub fn welcome_back(&self, partner: &str) {
        self.state().refusing.remove(partner);
    }

    pub fn accepted(&self) -> Vec<Delivery> {
        self.state().accepted.clone()
    }

    /// When each delivery id first arrived (whatever it was answered).
    pub fn first_arrivals(&self) -> HashMap<String, Instant> {
        let mut first = HashMap::new();
        for (id, at) in &self.state().arrivals {
            first.entry(id.clone()).or_insert(*at);
        }
        first
    }

    /// Requests received, accepted or not.
    pub fn requests(&self) -> usize {
        self.state().requests
    }

    pub fn bad_signatures(&self) -> usize {
        self.state().bad_signatures
    }

    /// Closes the port and every open connection: the endpoint is down.
    pub async fn down(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Listens again, on the same port once it had one.
    pub async fn up(&mut self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.addr).unwrap();
        let listener = socket.listen(64).unwrap();
        self.addr = listener.local_addr().unwrap();
        let state = self.state.clone();
        let acceptor = self.tls.as_ref().map(|(acceptor, _)| acceptor.clone());
        let mut server = JoinSet::new();
        server.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| answer(state.clone(), request));
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        self.server = Some(server);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

async fn answer(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let partner = path.trim_start_matches("/hooks/").to_owned();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (timestamp, signature, delivery_id) = (
        header("x-signature-timestamp"),
        header("x-signature"),
        header("idempotency-key"),
    );
    let scripted = {
        let mut state = state.lock().unwrap();
        state.requests += 1;
        let Some(secret) = state.secrets.get(&partner).cloned() else {
            return Ok(status(StatusCode::NOT_FOUND));
        };
        // The partner's side of the documented scheme, written out here.
        let canonical = format!(
            "v2\n{timestamp}\nPOST\n{path}\n{delivery_id}\n{}",
            hex::encode(Sha256::digest(&body))
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(canonical.as_bytes());
        let expected = format!("v2={}", hex::encode(mac.finalize().into_bytes()));
        let fresh = timestamp
            .parse::<i64>()
            .is_ok_and(|ts| (ts - chrono::Utc::now().timestamp()).abs() <= 300);
        if signature != expected || !fresh {
            state.bad_signatures += 1;
            return Ok(status(StatusCode::UNAUTHORIZED));
        }
        state.arrivals.push((delivery_id.clone(), Instant::now()));
        if let Some(code) = state.refusing.get(&partner) {
            return Ok(status(StatusCode::from_u16(*code).unwrap()));
        }
        state
            .scripts
            .get_mut(&partner)
            .and_then(VecDeque::pop_front)
    };
    match scripted {
        Some(Answer::Status(code)) => return Ok(status(StatusCode::from_u16(code).unwrap())),
        Some(Answer::TooMany(seconds)) => {
            let mut response = status(StatusCode::TOO_MANY_REQUESTS);
            response
                .headers_mut()
                .insert("retry-after", seconds.to_string().parse().unwrap());
            return Ok(response);
        }
        Some(Answer::Slow(pause)) => tokio::time::sleep(pause).await,
        None => {}
    }
    let delivery = Delivery {
        partner,
        delivery_id,
        attempt: header("x-delivery-attempt").parse().unwrap_or(0),
        decision: serde_json::from_slice(&body).unwrap_or(Value::Null),
        answered_at: Instant::now(),
    };
    state.lock().unwrap().accepted.push(delivery);
    Ok(status(StatusCode::NO_CONTENT))
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}
