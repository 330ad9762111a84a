//! In the browser: the listeners-over-time chart the page draws from a stats series, checked
//! on a known series (the stats endpoint's own numbers are tested with it, in the admin flow).

use super::*;

#[cfg_attr(
    not(all(jars_has = "chromium", jars_has = "chromedriver")),
    ignore = "needs chromium and chromedriver, not found when the tests were built (apt-get install chromium chromium-driver, then touch build.rs)"
)]
#[tokio::test]
async fn the_chart_steps_through_the_minutes_up_to_the_peak() {
    let server = TestServer::start("").await;
    let b = open_page(&server).await;
    let drawn = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             import('/ui/chart.js').then((m) => {
               const svg = m.listenersChart([
                 {t: '2026-11-30T10:01:00Z', listeners: 5},
                 {t: '2026-11-30T10:00:00Z', listeners: 2},
                 {t: '2026-11-30T10:02:00Z', listeners: 3},
               ]);
               document.body.append(svg);
               const box = svg.getBoundingClientRect();
               done({
                 label: svg.getAttribute('aria-label'),
                 path: svg.querySelector('path.line').getAttribute('d'),
                 ticks: [...svg.querySelectorAll('text')].map((t) => t.textContent),
                 width: box.width,
                 empty: m.listenersChart([]).textContent,
               });
             }).catch((e) => done({error: String(e)}));",
            vec![],
        )
        .await
        .unwrap();
    assert!(drawn["error"].is_null(), "{drawn}");
    let label = drawn["label"].as_str().unwrap();
    assert!(label.ends_with("at most 5."), "{label}");
    let path = drawn["path"].as_str().unwrap();
    // Sorted by minute: 2, then up to 5 (the top of the plot, y = 10), then down to 3; one
    // horizontal step per minute.
    assert_eq!(path.matches(" H ").count(), 3, "{path}");
    assert_eq!(path.matches(" V ").count(), 2, "{path}");
    assert!(
        path.contains(" V 10.0 "),
        "the peak reaches the top: {path}"
    );
    let ticks: Vec<&str> = drawn["ticks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(ticks.contains(&"0") && ticks.contains(&"5"), "{ticks:?}");
    assert!(drawn["width"].as_f64().unwrap() > 100.0, "{drawn}");
    assert!(
        drawn["empty"]
            .as_str()
            .unwrap()
            .contains("No listening yet"),
        "{drawn}"
    );
    b.close().await;
}
