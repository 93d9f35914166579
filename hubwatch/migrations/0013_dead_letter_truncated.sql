-- Dead letters are bounded after encoding (hubwatch.events.DEAD_LETTER_MAX_BYTES): say when
-- the payload was cut, rather than leave it to comparing sizes of escaped text.
ALTER TABLE dead_letters
    ADD COLUMN IF NOT EXISTS truncated Bool DEFAULT false COMMENT 'the payload holds only the first part of the input' AFTER payload_bytes,
    COMMENT COLUMN payload 'the input as text (bytes that are not UTF-8 as \\xNN escapes), cut so the whole letter stays within 256 KiB';
