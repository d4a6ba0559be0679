-- Run once by the MariaDB image at first start (deploy/compose.yaml): guacbridge's own
-- database, and the rights its guacamole sink needs on Guacamole's.
CREATE DATABASE IF NOT EXISTS guacbridge CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'guacbridge'@'%' IDENTIFIED BY 'change-me-guacbridge';
GRANT ALL ON guacbridge.* TO 'guacbridge'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON guacamole_db.* TO 'guacbridge'@'%';
