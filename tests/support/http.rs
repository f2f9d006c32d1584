//! Local stand-ins for HTTP services (Vercel, Slack, Discord, Twilio, webhooks): an axum app
//! served on a free loopback port for as long as the test's runtime runs.

/// Serves `app` and gives its base URL, `http://127.0.0.1:{port}`.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}
