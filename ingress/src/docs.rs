//! The API reference page, `GET /docs`: the OpenAPI document of `/openapi.json` rendered
//! by Swagger UI, which partners browse and try requests from.
//!
//! Every file is compiled in: the page (`ingress/assets/docs/`) and Swagger UI's
//! standalone bundle and stylesheet, vendored from the npm registry at a pinned version by
//! `infra/vendor-swagger-ui.sh` (`ingress/assets/swagger-ui/`, with its licence). Nothing is
//! loaded from another origin, and the Content-Security-Policy sent with each file says
//! so: scripts, styles, fetches and images from this origin only (inline style attributes,
//! which the renderer sets, and `data:` images aside).

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// The files of the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asset {
    /// `/docs`: the page itself.
    Page,
    /// `/docs/init.js`: starts Swagger UI on `/openapi.json`.
    Init,
    /// `/docs/swagger-ui-bundle.js`
    Bundle,
    /// `/docs/swagger-ui.css`
    Stylesheet,
}

impl Asset {
    /// The asset at `name` under `/docs/`.
    pub fn named(name: &str) -> Option<Asset> {
        Some(match name {
            "init.js" => Asset::Init,
            "swagger-ui-bundle.js" => Asset::Bundle,
            "swagger-ui.css" => Asset::Stylesheet,
            _ => return None,
        })
    }

    pub fn path(self) -> &'static str {
        match self {
            Asset::Page => "/docs",
            Asset::Init => "/docs/init.js",
            Asset::Bundle => "/docs/swagger-ui-bundle.js",
            Asset::Stylesheet => "/docs/swagger-ui.css",
        }
    }

    fn content(self) -> (&'static [u8], &'static str) {
        match self {
            Asset::Page => (
                include_bytes!("../assets/docs/index.html"),
                "text/html; charset=utf-8",
            ),
            Asset::Init => (
                include_bytes!("../assets/docs/init.js"),
                "text/javascript; charset=utf-8",
            ),
            Asset::Bundle => (
                include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js"),
                "text/javascript; charset=utf-8",
            ),
            Asset::Stylesheet => (
                include_bytes!("../assets/swagger-ui/swagger-ui.css"),
                "text/css; charset=utf-8",
            ),
        }
    }
}

/// What the page may load: its own files, `/openapi.json` and requests tried from it,
/// all from this origin. Styles allow inline attributes (Swagger UI's React sets them)
/// and images `data:` URIs (its icons).
pub const POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

static REFERRER_POLICY: HeaderName = HeaderName::from_static("referrer-policy");

pub fn response(asset: Asset) -> Response<Full<Bytes>> {
    let (body, content_type) = asset.content();
    let mut response = Response::new(Full::new(Bytes::from_static(body)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        REFERRER_POLICY.clone(),
        HeaderValue::from_static("no-referrer"),
    );
    // The files change only with the binary; an hour keeps a reload cheap and an
    // upgrade visible soon.
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files() {
        let (page, _) = Asset::Page.content();
        let page = std::str::from_utf8(page).unwrap();
        for asset in [Asset::Init, Asset::Bundle, Asset::Stylesheet] {
            assert!(
                page.contains(asset.path()),
                "{asset:?} not loaded by the page"
            );
            assert_eq!(Asset::named(&asset.path()["/docs/".len()..]), Some(asset));
        }
        assert!(!page.contains("http:") && !page.contains("https:"));
        assert!(
            !page.contains("<script>"),
            "no inline script: the policy forbids it"
        );
        let (init, _) = Asset::Init.content();
        assert!(std::str::from_utf8(init)
            .unwrap()
            .contains("validatorUrl: null"));
    }

    #[test]
    fn every_file_carries_the_policy() {
        for asset in [Asset::Page, Asset::Init, Asset::Bundle, Asset::Stylesheet] {
            let response = response(asset);
            assert_eq!(response.headers()[CONTENT_SECURITY_POLICY], POLICY);
            assert_eq!(response.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
        }
    }
}
