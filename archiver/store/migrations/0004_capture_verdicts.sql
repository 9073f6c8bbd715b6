-- Each capture's page verdict beside its transport outcome, and the signal that decided it.
-- Captures made before verdicts existed keep NULL: none is made up for them.
ALTER TABLE captures ADD COLUMN verdict TEXT
    CHECK (verdict IN ('content', 'http-error', 'not-found', 'bot-wall', 'login-wall', 'empty'));
ALTER TABLE captures ADD COLUMN verdict_reason TEXT
