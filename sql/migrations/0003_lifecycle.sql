-- Migration 0003: data lifecycle (kvapi 0.3.0).  A key may expire (a
-- TTL), and each user's usage, keys and bytes of key + value text, is a
-- row of user_usage that triggers on data keep exact: every statement
-- that adds, changes or deletes a pair (a worker's, the purge's, an
-- operator's) changes the usage in the same statement, so in the same
-- transaction.  The same triggers give each such write the user's next
-- revision (user_usage.rev: 1, 2, 3...; the row's lock, held to the
-- commit, orders them as the commits) and log it in changes, the feed of
-- GET /api/changes; the purge deletes changes older than
-- changes_retention and notes the highest it deleted (purged_rev).  A worker's connection sets @kvapi_quota_keys and
-- @kvapi_quota_bytes (db.c); a write that would take the user past one
-- of them fails with the signal 'kvapi: QUOTA_EXCEEDED' and changes
-- nothing.  Writes that do not grow the usage always pass, and a
-- connection without the variables (an operator's, a 0.2.0 worker's
-- during a rolling upgrade) is not limited.
--
-- Idempotent: the usage is counted anew from the data at the end, after
-- the triggers exist, so writes that run meanwhile are counted too (the
-- count's INSERT ... SELECT locks the rows it reads).

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
