-- Migration 0002: accounts and sessions (kvapi 0.2.0).  A login opens a
-- session, which holds one refresh token (rotated at every refresh) and
-- the access tokens minted from it; ending a session deletes it, and the
-- foreign keys delete its tokens with it.  Failed logins are counted per
-- username for the lock-out.  An operator may disable an account.
--
-- Idempotent, and the 0.1.0 workers keep working: they insert tokens
-- without a session (tokens.session_id is NULL-able), which stay valid
-- until they expire; the access-token check reads tokens alone, as before.

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
