-- Runs once, when the postgres-data volume is empty: one database per Postgres-owning service.
CREATE DATABASE auth;
CREATE DATABASE chat;
