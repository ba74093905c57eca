-- Read models of the postgres projector, its checkpoints and its parked streams.
-- Every row carries the version of the last event applied to it: writes are guarded by it.

CREATE TABLE users (
    id          text PRIMARY KEY,
    email       text NOT NULL,
    name        text NOT NULL,
    active      boolean NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint NOT NULL
);
CREATE INDEX users_created_at ON users (created_at);

CREATE TABLE orders (
    id           text PRIMARY KEY,
    customer_id  text NOT NULL,
    items        jsonb NOT NULL,
    total        bigint NOT NULL,
    currency     text NOT NULL,
    status       text NOT NULL,
    payment_ref  text,
    tracking     text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    version      bigint NOT NULL
);
CREATE INDEX orders_customer_id ON orders (customer_id);

-- Orders per user, derived from the rows (never a counter that could drift):
-- "spent" counts paid and shipped orders only, per currency.
CREATE VIEW user_order_totals AS
SELECT customer_id,
       currency,
       count(*)                                                        AS order_count,
       coalesce(sum(total) FILTER (WHERE status IN ('paid', 'shipped')), 0) AS spent
FROM orders
GROUP BY customer_id, currency;

-- The last record of each partition this projector accounted for, written in the same
-- transaction as the rows: the consumer seeks to "offset" + 1 after every rebalance.
CREATE TABLE projection_checkpoints (
    projector   text NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    "offset"    bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projector, topic, partition)
);

-- Streams blocked by a dead-lettered event, and the records parked behind it (not applied).
CREATE TABLE projection_blocked_streams (
    projector   text NOT NULL,
    stream_id   text NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    "offset"    bigint NOT NULL,
    blocked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projector, stream_id)
);

CREATE TABLE projection_parked (
    projector   text NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    "offset"    bigint NOT NULL,
    stream_id   text NOT NULL,
    key         bytea,
    value       bytea,
    parked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projector, topic, partition, "offset")
);
