-- Erasure (docs/erasure.md): a forgotten user's row leaves `users`; this marker, which holds no
-- personal data, keeps every older event of its stream from writing the row again (a replay
-- from before the log's compaction reads them). Orders keep their money facts and lose their
-- customer.

CREATE TABLE forgotten_users (
    id            text PRIMARY KEY,
    version       bigint NOT NULL,
    forgotten_at  timestamptz NOT NULL
);

ALTER TABLE orders ALTER COLUMN customer_id DROP NOT NULL;
