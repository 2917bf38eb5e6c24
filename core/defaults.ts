/**
 * Named defaults and limits, with their units last in the name. Every queue, mailbox,
 * batch and buffer in the platform takes its maximum from here unless configured.
 */

/** Messages an actor mailbox holds before new requests are refused with `CRAFT_OVERLOADED`. */
export const MAILBOX_CAPACITY = 10_000;
/** How long a request over NATS waits for its reply before it fails. */
export const REQUEST_TIMEOUT_MS = 5_000;
/** Payload ceiling we keep below NATS's default 1 MiB `max_payload`, leaving room for headers. */
export const NATS_PAYLOAD_BYTES_MAX = 900 * 1024;

/** Default HTTP ports: ingestion like the seed, query like Prometheus. */
export const INGESTION_PORT_DEFAULT = 8080;
export const QUERY_PORT_DEFAULT = 9090;
/** The alerting API's port: Alertmanager's, so Prometheus and amtool find it where they expect it. */
export const ALERTING_PORT_DEFAULT = 9093;

/** Seed rules for the ingestion API. */
export const BATCH_METRICS_MAX = 1_000;
export const METRIC_NAME_LENGTH_MAX = 255;
/** Labels a series may have, `__name__` included (Mimir's default; VictoriaMetrics: 30 as well until 1.90). */
export const LABELS_PER_SERIES_MAX = 30;
/** Characters of a label name (Mimir's default). */
export const LABEL_NAME_LENGTH_MAX = 1_024;
/** Characters of a label value (Mimir's default). */
export const LABEL_VALUE_LENGTH_MAX = 2_048;
/** Active series one tenant may have (Mimir's max_global_series_per_user). */
export const SERIES_PER_TENANT_MAX = 150_000;
/** New series one tenant may create a minute (a bucket holding a minute's worth). */
export const NEW_SERIES_PER_TENANT_PER_MINUTE = 60_000;
/** Active series of all tenants together, per ingestion process. */
export const ACTIVE_SERIES_MAX = 2_000_000;
/** A series is active this long after its last sample, ms. */
export const ACTIVE_SERIES_WINDOW_MS = 10 * 60_000;
/** Samples in one remote-write or line-protocol request. */
export const SAMPLES_PER_REQUEST_MAX = 50_000;
/** Request bodies above this size are answered 413 before they are read in full. */
export const BODY_BYTES_MAX = 4 * 1024 * 1024;
/** Requests per second per client id in the sliding one-second window (seed default). */
export const RATE_LIMIT_REQUESTS_PER_SECOND = 10_000;
/** Bounded work queue of the seed's thread pool; full means 503. */
export const WORK_QUEUE_CAPACITY = 10_000;
/** Appends in flight from one ingestion process to the queue before requests get 503. */
export const APPEND_IN_FLIGHT_MAX = 4_096;
/** Retry-After seconds sent with 429 and 503 answers. */
export const RETRY_AFTER_S = 1;

/** Queue defaults (Craft #2 keeps these names). */
export const QUEUE_PARTITIONS = 4;
/** Messages the in-memory queue holds per partition before appends are refused. */
export const MEMORY_QUEUE_MESSAGES_MAX = 100_000;
export const FETCH_MESSAGES_MAX = 256;
export const FETCH_WAIT_MS = 500;

/** Supervisor defaults, OTP-style: at most 5 restarts in 10 s, else fail upward. */
export const RESTART_INTENSITY = 5;
export const RESTART_PERIOD_MS = 10_000;
export const RESTART_BACKOFF_MIN_MS = 50;
export const RESTART_BACKOFF_MAX_MS = 5_000;
export const RESTART_BACKOFF_JITTER = 0.2;
export const SHUTDOWN_TIMEOUT_MS = 5_000;

/** Journal snapshot cadence: a snapshot every N events bounds replay time. */
export const SNAPSHOT_EVERY_EVENTS = 1_000;

/** Embedded nats-server: how long to wait for it to accept connections. */
export const NATS_START_TIMEOUT_MS = 10_000;

/** Alerting (Craft #0): evaluation interval of the polling evaluator. */
export const ALERT_EVAL_INTERVAL_MS = 10_000;

/** Most series one storage select answers (`storage.selectSeriesMax`); the query engine's own per-selector bound is the same. */
export const STORAGE_SELECT_SERIES_MAX = 500_000;
/** Most samples one storage select reads (`storage.selectSamplesMax`); the query engine's per-query bound is the same. */
export const STORAGE_SELECT_SAMPLES_MAX = 50_000_000;

/** How often a storage member announces itself on `craft.storage.announce`; readers forget a member silent for 3.5 of these. */
export const STORAGE_ANNOUNCE_MS = 1_000;
