-- kvapi schema (MariaDB / MySQL, InnoDB, utf8mb4).  Idempotent: every
-- statement may run again on a database that already has it.

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
