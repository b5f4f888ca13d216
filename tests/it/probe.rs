//! Header probes against a small local web server standing in for a deployed Worker.

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use lmsinfra::live::Probe;
use lmsinfra::probe::Prober;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn worker() -> Router {
    Router::new()
        .route(
            "/health",
            get(|headers: HeaderMap| async move {
                let mut response = (StatusCode::OK, "ok").into_response();
                let out = response.headers_mut();
                out.insert("X-Frame-Options", HeaderValue::from_static("DENY"));
                out.append("Vary", HeaderValue::from_static("Origin"));
                out.append("Vary", HeaderValue::from_static("Accept"));
                let saw_auth = headers.contains_key(header::AUTHORIZATION);
                out.insert(
                    "x-saw-authorization",
                    HeaderValue::from_str(&saw_auth.to_string()).unwrap(),
                );
                response
            }),
        )
        .route(
            "/old",
            get(|| async {
                (
                    StatusCode::MOVED_PERMANENTLY,
                    [(header::LOCATION, "/health")],
                )
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
}

#[tokio::test]
async fn probe_reports_lowercase_headers_and_joins_repeats() {
    let base = serve(worker()).await;
    let Probe::Answered {
        status,
        headers,
        redirect,
    } = Prober::new(Duration::from_secs(5))
        .probe(&format!("{base}/health"))
        .await
    else {
        panic!("unreachable")
    };
    assert_eq!(status, 200);
    assert_eq!(redirect, None);
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["vary"], "Origin, Accept");
    assert_eq!(headers["x-saw-authorization"], "false");
}

#[tokio::test]
async fn probe_reports_a_redirect_without_following_it() {
    let base = serve(worker()).await;
    let probe = Prober::new(Duration::from_secs(5))
        .probe(&format!("{base}/old"))
        .await;
    let Probe::Answered {
        status,
        headers,
        redirect,
    } = probe
    else {
        panic!("unreachable")
    };
    assert_eq!(status, 301);
    assert_eq!(redirect.as_deref(), Some("/health"));
    assert!(!headers.contains_key("x-frame-options"));
}

#[tokio::test]
async fn unreachable_or_slow_urls_are_reported_not_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let prober = Prober::new(Duration::from_millis(300));
    assert!(matches!(
        prober.probe(&closed).await,
        Probe::Unreachable { .. }
    ));
    let base = serve(worker()).await;
    assert!(matches!(
        prober.probe(&format!("{base}/slow")).await,
        Probe::Unreachable { .. }
    ));
    assert!(matches!(
        prober.probe("not a url").await,
        Probe::Unreachable { .. }
    ));
}
