//! The read endpoints against the real server and the shared Redis. Projections are
//! written straight into Redis, as the consumer would write them, under ids and property
//! names no other test or run uses.

mod support;

use redis::AsyncCommands;
use serde_json::{json, Value};
use support::{own_redis, Ingress, Reply, SECRET_ACME, SECRET_WRITE_ONLY};
use uuid::Uuid;

fn assert_problem(reply: &Reply, status: u16, kind: &str) -> Value {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), "application/problem+json");
    let json = reply.json();
    assert_eq!(json["type"], format!("/problems/{kind}"));
    json
}

fn assert_ok(reply: &Reply) -> Value {
    assert_eq!(
        reply.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), "application/json");
    reply.json()
}

/// Writes a booking projection the way `consumers::projection` does, for a booking that
/// partner `owner` created (none: a projection written before bookings recorded theirs).
async fn project_booking(tenant: &str, owner: Option<&str>, status: &str, reason: &str) -> Uuid {
    let id = Uuid::new_v4();
    let mut redis = own_redis::connect(&support::redis_url()).await;
    let mut fields = vec![
        ("status", status),
        ("reason", reason),
        ("tenant_id", tenant),
        ("property_id", "lisbon-1"),
        ("room_type", "DBL"),
        ("check_in", "2027-04-01"),
        ("check_out", "2027-04-03"),
        ("rooms", "2"),
        ("partition", "7"),
        ("offset", "42"),
    ];
    fields.extend(owner.map(|owner| ("partner_id", owner)));
    let _: () = redis
        .hset_multiple(partitioner::keys::booking_status(id), &fields)
        .await
        .unwrap();
    let _: () = redis
        .expire(partitioner::keys::booking_status(id), 600)
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn a_booking_is_read_from_its_projection() {
    let ingress = Ingress::start().await;
    let unknown = ingress
        .get(&format!("/v1/bookings/{}", Uuid::new_v4()))
        .send()
        .await;
    let problem = assert_problem(&unknown, 404, "not-found");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("not yet processed"));

    let confirmed = project_booking("acme", Some("ota-1"), "confirmed", "").await;
    let body = assert_ok(
        &ingress
            .get(&format!("/v1/bookings/{confirmed}"))
            .send()
            .await,
    );
    assert_eq!(
        body,
        json!({"booking_id": confirmed.to_string(), "status": "confirmed",
               "tenant_id": "acme", "property_id": "lisbon-1", "room_type": "DBL",
               "check_in": "2027-04-01", "check_out": "2027-04-03", "rooms": 2})
    );

    let rejected = project_booking("acme", Some("ota-1"), "rejected", "sold_out").await;
    let body = assert_ok(
        &ingress
            .get(&format!("/v1/bookings/{rejected}"))
            .send()
            .await,
    );
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["reason"], "sold_out");

    // ota-2 may read its own bookings of acme only; another partner's or another tenant's
    // booking looks unknown to it, and so does one whose projection names no owner.
    let globex = project_booking("globex", Some("ota-2"), "confirmed", "").await;
    let own = project_booking("acme", Some("ota-2"), "confirmed", "").await;
    let ownerless = project_booking("acme", None, "confirmed", "").await;
    let acme_only = format!("Bearer {SECRET_ACME}");
    let read = |id: Uuid, auth: &str| {
        let call = ingress
            .get(&format!("/v1/bookings/{id}"))
            .header("authorization", auth);
        async move { call.send().await }
    };
    assert_ok(&read(own, &acme_only).await);
    assert_problem(&read(confirmed, &acme_only).await, 404, "not-found");
    assert_problem(&read(globex, &acme_only).await, 404, "not-found");
    assert_problem(&read(ownerless, &acme_only).await, 404, "not-found");
    assert_problem(
        &ingress.get(&format!("/v1/bookings/{globex}")).send().await,
        404,
        "not-found",
    );
    let write_only = format!("Bearer {SECRET_WRITE_ONLY}");
    assert_problem(&read(confirmed, &write_only).await, 403, "forbidden");
    let reply = ingress
        .get(&format!("/v1/bookings/{confirmed}"))
        .without("authorization")
        .send()
        .await;
    assert_problem(&reply, 401, "unauthorized");
    ingress.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn availability_reports_known_nights_and_null_for_unknown_ones() {
    let ingress = Ingress::start().await;
    let property = format!("p-{}", Uuid::new_v4().simple());
    let key = partitioner::keys::availability("acme", &property, "DBL");
    let mut redis = own_redis::connect(&support::redis_url()).await;
    let _: () = redis
        .hset_multiple(&key, &[("2027-05-01", 3), ("2027-05-03", 0)])
        .await
        .unwrap();
    let _: () = redis.expire(&key, 600).await.unwrap();

    let path = |from: &str, to: &str| {
        format!(
            "/v1/availability?tenant_id=acme&property_id={property}&room_type=DBL&from={from}&to={to}"
        )
    };
    let body = assert_ok(&ingress.get(&path("2027-05-01", "2027-05-04")).send().await);
    assert_eq!(
        body,
        json!({"tenant_id": "acme", "property_id": property, "room_type": "DBL",
               "from": "2027-05-01", "to": "2027-05-04", "nights": [
                   {"date": "2027-05-01", "remaining": 3},
                   {"date": "2027-05-02", "remaining": null},
                   {"date": "2027-05-03", "remaining": 0}]})
    );

    // The range is capped: 62 nights pass, 63 do not.
    let body = assert_ok(&ingress.get(&path("2027-05-01", "2027-07-02")).send().await);
    assert_eq!(body["nights"].as_array().unwrap().len(), 62);
    let too_long = ingress.get(&path("2027-05-01", "2027-07-03")).send().await;
    let problem = assert_problem(&too_long, 422, "validation");
    assert_eq!(problem["errors"][0]["field"], "to");

    let reply = ingress
        .get("/v1/availability?tenant_id=acme&form=2027-01-01")
        .send()
        .await;
    let problem = assert_problem(&reply, 422, "validation");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["form"]);
    let reply = ingress.get("/v1/availability").send().await;
    let problem = assert_problem(&reply, 422, "validation");
    assert_eq!(problem["errors"].as_array().unwrap().len(), 5);

    let globex = ingress
        .get(&path("2027-05-01", "2027-05-04").replace("acme", "globex"))
        .header("authorization", &format!("Bearer {SECRET_ACME}"))
        .send()
        .await;
    assert_problem(&globex, 403, "forbidden");
    ingress.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn the_openapi_document_is_served_without_a_key() {
    let ingress = Ingress::start().await;
    let reply = ingress
        .get("/openapi.json")
        .without("authorization")
        .send()
        .await;
    let spec = assert_ok(&reply);
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/v1/availability"]["get"].is_object());
    let reply = ingress.post("/openapi.json").json(&json!({})).await;
    assert_problem(&reply, 405, "method-not-allowed");
    ingress.stop().await.expect("clean shutdown");
}
