-- Signatures of accepted state-changing requests, remembered for the replay window.
CREATE TABLE seen_requests (
    signature text PRIMARY KEY,
    seen_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX seen_requests_by_age ON seen_requests (seen_at);
