//! The one outbound HTTP client of the engine (the Meta Insights pull, the outbound sender):
//! hyper-util over the HTTP stack the AWS SDK already builds on, so no second one; with the
//! `tls` feature, rustls on aws-lc-rs and the system's roots (or only those of `SSL_CERT_FILE`
//! / `SSL_CERT_DIR`: how a test or a proxy's CA is trusted). URLs may carry tokens: neither
//! they nor the client's errors (which quote them) are ever logged; errors are described
//! without them.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Nothing came back in time.
    #[error("no answer in {0:?}")]
    Timeout(Duration),
    /// The request could not be made or its answer read (no URL in the description).
    #[error("{0}")]
    Unreachable(String),
}

/// An answer: its status, its `Retry-After` header and its body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After`, as sent.
    pub retry_after: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// An HTTP/1.1 client, plain or with TLS.
#[derive(Clone)]
pub struct HttpClient {
    inner: Inner,
    timeout: Duration,
}

#[derive(Clone)]
enum Inner {
    Plain(Client<HttpConnector, Full<Bytes>>),
    #[cfg(feature = "tls")]
    Tls(Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>),
}

/// A client error without the request's URL.
fn describe(error: &hyper_util::client::legacy::Error) -> String {
    if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    }
}

impl HttpClient {
    /// A client that waits at most `timeout` for each answer: TLS when built with it and roots
    /// are found, plain HTTP otherwise (then https URLs are unreachable, which it logs once).
    pub fn new(timeout: Duration) -> Self {
        #[cfg(feature = "tls")]
        {
            match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
                Ok(builder) => {
                    let connector = builder.https_or_http().enable_http1().build();
                    return Self {
                        inner: Inner::Tls(Client::builder(TokioExecutor::new()).build(connector)),
                        timeout,
                    };
                }
                Err(error) => {
                    tracing::warn!(%error, "no TLS roots: https URLs are unreachable")
                }
            }
        }
        Self {
            inner: Inner::Plain(Client::builder(TokioExecutor::new()).build_http()),
            timeout,
        }
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Result<Answer, HttpError> {
        self.send(http::Method::GET, url, &[], Bytes::new()).await
    }

    /// `POST url` with `headers` and `body`.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Answer, HttpError> {
        self.send(http::Method::POST, url, headers, body).await
    }

    async fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Answer, HttpError> {
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(Full::new(body))
            .map_err(|_| HttpError::Unreachable("the URL or a header does not parse".to_owned()))?;
        let answer = async {
            let response = match &self.inner {
                Inner::Plain(client) => client.request(request).await,
                #[cfg(feature = "tls")]
                Inner::Tls(client) => client.request(request).await,
            }
            .map_err(|error| HttpError::Unreachable(describe(&error)))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| HttpError::Unreachable(format!("reading the answer: {error}")))?
                .to_bytes();
            Ok(Answer {
                status,
                retry_after,
                body,
            })
        };
        tokio::time::timeout(self.timeout, answer)
            .await
            .map_err(|_| HttpError::Timeout(self.timeout))?
    }
}

#[async_trait::async_trait]
impl crate::outbound::sender::Transport for HttpClient {
    async fn post(
        &self,
        request: &crate::outbound::payload::Request,
    ) -> Result<crate::outbound::sender::Sent, String> {
        let content_type = if request.form {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
        headers.extend(request.headers.iter().cloned());
        let answer = HttpClient::post(
            self,
            &request.url,
            &headers,
            Bytes::from(request.body.clone()),
        )
        .await
        .map_err(|error| error.to_string())?;
        Ok(crate::outbound::sender::Sent {
            status: answer.status,
            retry_after: answer.retry_after,
            body: answer.body,
        })
    }
}
