-- kvapi schema (MariaDB / MySQL, InnoDB, utf8mb4).  Idempotent: every
-- statement may run again on a database that already has it, and on one
-- made by an earlier release's schema.sql, which it upgrades: it is the
-- migrations (sql/migrations/) in one file, and t/86-migrate.t checks
-- that both end in the same tables.

-- Usernames are ASCII ([A-Za-z0-9_.-]) and unique without regard to case,
-- so "Bob" and "bob" cannot be two accounts; the name is kept as sent.
-- email_key is the ASCII-lowercased email, the unique index that makes
-- emails compare case-insensitively; email is kept as sent.
CREATE TABLE IF NOT EXISTS users (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  username      VARCHAR(64) CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
  email         VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  email_key     VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  password_hash VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  full_name     VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  age           SMALLINT UNSIGNED NULL,
  gender        VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  created_at    DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
  PRIMARY KEY (id),
  UNIQUE KEY uq_users_username (username),
  UNIQUE KEY uq_users_email_key (email_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Access tokens: only the SHA-256 of the token is stored.  Times are UTC
-- with microseconds, so a 1-second lifetime is exact.
CREATE TABLE IF NOT EXISTS tokens (
  token_hash BINARY(32) NOT NULL,
  user_id    BIGINT UNSIGNED NOT NULL,
  created_at DATETIME(6) NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  PRIMARY KEY (token_hash),
  KEY ix_tokens_expires (expires_at),
  KEY ix_tokens_user (user_id),
  CONSTRAINT fk_tokens_user FOREIGN KEY (user_id) REFERENCES users (id)
    ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Key-value data.  The key is bytes (VARBINARY): exact matching, byte
-- order for listings, and the (user_id, k) primary key is what makes a
-- second POST of a key fail, whatever the concurrency.  v is the value's
-- compact JSON text; version is a new random number at every write
-- (the ETag), so a re-created key never repeats an old one.
CREATE TABLE IF NOT EXISTS data (
  user_id    BIGINT UNSIGNED NOT NULL,
  k          VARBINARY(255) NOT NULL,
  v          MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  version    BIGINT UNSIGNED NOT NULL DEFAULT 1,
  created_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
  updated_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
  PRIMARY KEY (user_id, k),
  CONSTRAINT fk_data_user FOREIGN KEY (user_id) REFERENCES users (id)
    ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Accounts and sessions (migration 0002).  A login opens a session,
-- which holds one refresh token and the access tokens minted from it;
-- ending a session deletes it, and the foreign keys its tokens with it.

-- The public session id is 16 random bytes (22 characters of base64url).
-- expires_at is when the refresh token stops working: created or last
-- refreshed + refresh_lifetime.  user_agent is the login's, cut to 255
-- bytes, NULL when absent or not clean UTF-8 text.
CREATE TABLE IF NOT EXISTS sessions (
  id           BINARY(16) NOT NULL,
  user_id      BIGINT UNSIGNED NOT NULL,
  created_at   DATETIME(6) NOT NULL,
  refreshed_at DATETIME(6) NULL,
  expires_at   DATETIME(6) NOT NULL,
  user_agent   VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  PRIMARY KEY (id),
  KEY ix_sessions_user (user_id, created_at),
  KEY ix_sessions_expires (expires_at),
  CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id)
    ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Refresh tokens: only the SHA-256 is kept.  A rotation marks the old one
-- consumed (kept, so that a replay is recognised and ends the session)
-- and adds the next.
CREATE TABLE IF NOT EXISTS refresh_tokens (
  token_hash  BINARY(32) NOT NULL,
  session_id  BINARY(16) NOT NULL,
  created_at  DATETIME(6) NOT NULL,
  expires_at  DATETIME(6) NOT NULL,
  consumed_at DATETIME(6) NULL,
  PRIMARY KEY (token_hash),
  KEY ix_refresh_tokens_session (session_id),
  KEY ix_refresh_tokens_expires (expires_at),
  CONSTRAINT fk_refresh_tokens_session FOREIGN KEY (session_id)
    REFERENCES sessions (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Failed password logins, by SHA-256 of the lower-cased username (known
-- or not: the lock-out must not tell which), purged once past the window.
CREATE TABLE IF NOT EXISTS login_failures (
  name_hash BINARY(32) NOT NULL,
  failed_at DATETIME(6) NOT NULL,
  KEY ix_login_failures_name (name_hash, failed_at),
  KEY ix_login_failures_time (failed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

ALTER TABLE users ADD COLUMN IF NOT EXISTS disabled_at DATETIME(6) NULL;

ALTER TABLE tokens ADD COLUMN IF NOT EXISTS session_id BINARY(16) NULL;
ALTER TABLE tokens ADD KEY IF NOT EXISTS ix_tokens_session (session_id);
ALTER TABLE tokens ADD CONSTRAINT fk_tokens_session FOREIGN KEY
  IF NOT EXISTS (session_id) REFERENCES sessions (id) ON DELETE CASCADE;

-- Every token made before sessions existed (or by a 0.1.0 worker during a
-- rolling upgrade) becomes a session of its own, without a refresh token,
-- ending when the token does.  The id is derived from the token's hash,
-- so that a second run finds the same sessions; it reveals nothing of
-- the token.
INSERT IGNORE INTO sessions (id, user_id, created_at, expires_at)
  SELECT UNHEX(LEFT(SHA2(CONCAT('kvapi-session:', HEX(token_hash)), 256), 32)),
         user_id, created_at, expires_at
    FROM tokens WHERE session_id IS NULL;
UPDATE tokens
   SET session_id = UNHEX(LEFT(SHA2(CONCAT('kvapi-session:', HEX(token_hash)), 256), 32))
 WHERE session_id IS NULL;

-- Data lifecycle (migration 0003): keys may expire, and each user's usage
-- is a row that triggers on data keep exact and a quota bounds.
ALTER TABLE data ADD COLUMN IF NOT EXISTS expires_at DATETIME(6) NULL;
ALTER TABLE data ADD KEY IF NOT EXISTS ix_data_expires (expires_at);

CREATE TABLE IF NOT EXISTS user_usage (
  user_id    BIGINT UNSIGNED NOT NULL,
  key_count  BIGINT NOT NULL DEFAULT 0,
  byte_count BIGINT NOT NULL DEFAULT 0,
  rev        BIGINT UNSIGNED NOT NULL DEFAULT 0,
  purged_rev BIGINT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id),
  CONSTRAINT fk_user_usage_user FOREIGN KEY (user_id) REFERENCES users (id)
    ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One line of the feed: a write of key k (version: the new ETag's; NULL
-- for a delete) as revision rev of its user.
CREATE TABLE IF NOT EXISTS changes (
  user_id    BIGINT UNSIGNED NOT NULL,
  rev        BIGINT UNSIGNED NOT NULL,
  k          VARBINARY(255) NOT NULL,
  version    BIGINT UNSIGNED NULL,
  changed_at DATETIME(6) NOT NULL,
  PRIMARY KEY (user_id, rev),
  KEY ix_changes_time (changed_at),
  CONSTRAINT fk_changes_user FOREIGN KEY (user_id) REFERENCES users (id)
    ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

DELIMITER //
-- The triggers below keep each user's row of user_usage: a write of a pair
-- adds its keys and bytes (fewer for a delete or a shrink), takes the
-- user's next revision (LAST_INSERT_ID(rev + 1): the number without
-- reading the row again; a trigger's LAST_INSERT_ID does not outlive it)
-- and logs it in changes (version NULL: a delete).  A write that grows
-- the usage past the connection's quota is refused with a signal.  The
-- code is in each trigger, not in a procedure they call: a CALL per row
-- cost as much again as the rest (docs/performance.md).  A user's first
-- pair makes the row.
CREATE OR REPLACE TRIGGER data_changed_insert AFTER INSERT ON data
  FOR EACH ROW
BEGIN
  DECLARE nk, nb BIGINT;
  INSERT INTO user_usage (user_id, key_count, byte_count, rev)
    VALUES (NEW.user_id, 1, LENGTH(NEW.k) + LENGTH(NEW.v), LAST_INSERT_ID(1))
    ON DUPLICATE KEY UPDATE key_count = key_count + 1,
      byte_count = byte_count + LENGTH(NEW.k) + LENGTH(NEW.v),
      rev = LAST_INSERT_ID(rev + 1);
  INSERT INTO changes (user_id, rev, k, version, changed_at)
    VALUES (NEW.user_id, LAST_INSERT_ID(), NEW.k, NEW.version,
            UTC_TIMESTAMP(6));
  IF @kvapi_quota_keys IS NOT NULL OR @kvapi_quota_bytes IS NOT NULL THEN
    SELECT key_count, byte_count INTO nk, nb FROM user_usage
      WHERE user_id = NEW.user_id;
    IF nk > @kvapi_quota_keys OR nb > @kvapi_quota_bytes THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'kvapi: QUOTA_EXCEEDED';
    END IF;
  END IF;
END//
-- A row left as it was is no write (a POST onto a live key); a worker's
-- write always gives it a new version.
CREATE OR REPLACE TRIGGER data_changed_update AFTER UPDATE ON data
  FOR EACH ROW
BEGIN
  DECLARE nb BIGINT;
  DECLARE db BIGINT DEFAULT CAST(LENGTH(NEW.k) + LENGTH(NEW.v) AS SIGNED)
      - CAST(LENGTH(OLD.k) + LENGTH(OLD.v) AS SIGNED);
  IF NOT (NEW.version <=> OLD.version AND NEW.v <=> OLD.v
          AND NEW.expires_at <=> OLD.expires_at) THEN
    INSERT INTO user_usage (user_id, key_count, byte_count, rev)
      VALUES (NEW.user_id, 0, db, LAST_INSERT_ID(1))
      ON DUPLICATE KEY UPDATE byte_count = byte_count + db,
        rev = LAST_INSERT_ID(rev + 1);
    INSERT INTO changes (user_id, rev, k, version, changed_at)
      VALUES (NEW.user_id, LAST_INSERT_ID(), NEW.k, NEW.version,
              UTC_TIMESTAMP(6));
    IF db > 0 AND @kvapi_quota_bytes IS NOT NULL THEN
      SELECT byte_count INTO nb FROM user_usage WHERE user_id = NEW.user_id;
      IF nb > @kvapi_quota_bytes THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'kvapi: QUOTA_EXCEEDED';
      END IF;
    END IF;
  END IF;
END//
CREATE OR REPLACE TRIGGER data_changed_delete AFTER DELETE ON data
  FOR EACH ROW
BEGIN
  INSERT INTO user_usage (user_id, key_count, byte_count, rev)
    VALUES (OLD.user_id, -1, -CAST(LENGTH(OLD.k) + LENGTH(OLD.v) AS SIGNED),
            LAST_INSERT_ID(1))
    ON DUPLICATE KEY UPDATE key_count = key_count - 1,
      byte_count = byte_count - CAST(LENGTH(OLD.k) + LENGTH(OLD.v) AS SIGNED),
      rev = LAST_INSERT_ID(rev + 1);
  INSERT INTO changes (user_id, rev, k, version, changed_at)
    VALUES (OLD.user_id, LAST_INSERT_ID(), OLD.k, NULL, UTC_TIMESTAMP(6));
END//
-- The purge of old changes: a since before the highest one gone is 410.
CREATE OR REPLACE TRIGGER changes_purged AFTER DELETE ON changes
  FOR EACH ROW
  UPDATE user_usage SET purged_rev = GREATEST(purged_rev, OLD.rev)
   WHERE user_id = OLD.user_id//
DELIMITER ;

INSERT INTO user_usage (user_id, key_count, byte_count)
  SELECT user_id, COUNT(*), SUM(LENGTH(k) + LENGTH(v)) FROM data
   GROUP BY user_id
  ON DUPLICATE KEY UPDATE key_count = VALUE(key_count),
                          byte_count = VALUE(byte_count);
-- Pairs written before the feed existed have no revision: a client
-- syncs them from a listing, then follows the feed from revision 0.
