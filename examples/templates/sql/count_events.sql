-- Rendered before it runs: {{ ds }} is the logical date of the run.
CREATE TABLE events (day TEXT, n INTEGER);
INSERT INTO events VALUES ('{{ ds }}', 3), ('{{ macros.ds_add(ds, -1) }}', 5);
SELECT sum(n) FROM events WHERE day = '{{ ds }}';
