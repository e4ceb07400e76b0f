-- Migration 0003: data lifecycle (kvapi 0.3.0).  A key may expire (a
-- TTL), and each user's usage, keys and bytes of key + value text, is a
-- row of user_usage that triggers on data keep exact: every statement
-- that adds, changes or deletes a pair (a worker's, the purge's, an
-- operator's) changes the usage in the same statement, so in the same
-- transaction.  A worker's connection sets @kvapi_quota_keys and
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
  PRIMARY KEY (user_id),
  CONSTRAINT fk_user_usage_user FOREIGN KEY (user_id) REFERENCES users (id)
    ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

DELIMITER //
-- Add dk keys and db bytes to the usage of user uid; refuse growth past
-- the connection's quota.  A user's first pair makes the row.
CREATE OR REPLACE PROCEDURE kvapi_usage_add(uid BIGINT UNSIGNED, dk BIGINT,
    db BIGINT)
  MODIFIES SQL DATA
BEGIN
  DECLARE nk, nb BIGINT;
  IF dk <> 0 OR db <> 0 THEN
    INSERT INTO user_usage (user_id, key_count, byte_count)
      VALUES (uid, dk, db)
      ON DUPLICATE KEY UPDATE key_count = key_count + dk,
                              byte_count = byte_count + db;
    IF (dk > 0 AND @kvapi_quota_keys IS NOT NULL)
        OR (db > 0 AND @kvapi_quota_bytes IS NOT NULL) THEN
      SELECT key_count, byte_count INTO nk, nb FROM user_usage
        WHERE user_id = uid;
      IF (dk > 0 AND nk > @kvapi_quota_keys)
          OR (db > 0 AND nb > @kvapi_quota_bytes) THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'kvapi: QUOTA_EXCEEDED';
      END IF;
    END IF;
  END IF;
END//
CREATE OR REPLACE TRIGGER data_usage_insert AFTER INSERT ON data
  FOR EACH ROW
  CALL kvapi_usage_add(NEW.user_id, 1, LENGTH(NEW.k) + LENGTH(NEW.v))//
CREATE OR REPLACE TRIGGER data_usage_update AFTER UPDATE ON data
  FOR EACH ROW
  CALL kvapi_usage_add(NEW.user_id, 0,
      CAST(LENGTH(NEW.k) + LENGTH(NEW.v) AS SIGNED)
      - CAST(LENGTH(OLD.k) + LENGTH(OLD.v) AS SIGNED))//
CREATE OR REPLACE TRIGGER data_usage_delete AFTER DELETE ON data
  FOR EACH ROW
  CALL kvapi_usage_add(OLD.user_id, -1,
      -CAST(LENGTH(OLD.k) + LENGTH(OLD.v) AS SIGNED))//
DELIMITER ;

INSERT INTO user_usage (user_id, key_count, byte_count)
  SELECT user_id, COUNT(*), SUM(LENGTH(k) + LENGTH(v)) FROM data
   GROUP BY user_id
  ON DUPLICATE KEY UPDATE key_count = VALUE(key_count),
                          byte_count = VALUE(byte_count);
