-- A Guacamole-1.5-compatible JDBC schema for MySQL/MariaDB, written by guacbridge from the
-- documented table layout, for development and tests (`guacbridge initdb --guacamole-schema`).
-- Production installs use the schema shipped with Guacamole itself.

CREATE TABLE guacamole_entity (
  entity_id INT NOT NULL AUTO_INCREMENT,
  name VARCHAR(128) NOT NULL,
  type ENUM('USER', 'USER_GROUP') NOT NULL,
  PRIMARY KEY (entity_id),
  UNIQUE KEY guacamole_entity_name_scope (type, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_connection_group (
  connection_group_id INT NOT NULL AUTO_INCREMENT,
  parent_id INT,
  connection_group_name VARCHAR(128) NOT NULL,
  type ENUM('ORGANIZATIONAL', 'BALANCING') NOT NULL DEFAULT 'ORGANIZATIONAL',
  max_connections INT,
  max_connections_per_user INT,
  enable_session_affinity BOOLEAN NOT NULL DEFAULT 0,
  PRIMARY KEY (connection_group_id),
  UNIQUE KEY connection_group_name_parent (connection_group_name, parent_id),
  CONSTRAINT guacamole_connection_group_ibfk_1 FOREIGN KEY (parent_id)
    REFERENCES guacamole_connection_group (connection_group_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_connection (
  connection_id INT NOT NULL AUTO_INCREMENT,
  connection_name VARCHAR(128) NOT NULL,
  parent_id INT,
  protocol VARCHAR(32) NOT NULL,
  proxy_port INT,
  proxy_hostname VARCHAR(512),
  proxy_encryption_method ENUM('NONE', 'SSL'),
  max_connections INT,
  max_connections_per_user INT,
  connection_weight INT,
  failover_only BOOLEAN NOT NULL DEFAULT 0,
  PRIMARY KEY (connection_id),
  UNIQUE KEY connection_name_parent (connection_name, parent_id),
  CONSTRAINT guacamole_connection_ibfk_1 FOREIGN KEY (parent_id)
    REFERENCES guacamole_connection_group (connection_group_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_user (
  user_id INT NOT NULL AUTO_INCREMENT,
  entity_id INT NOT NULL,
  password_hash BINARY(32) NOT NULL,
  password_salt BINARY(32),
  password_date DATETIME NOT NULL,
  disabled BOOLEAN NOT NULL DEFAULT 0,
  expired BOOLEAN NOT NULL DEFAULT 0,
  access_window_start TIME,
  access_window_end TIME,
  valid_from DATE,
  valid_until DATE,
  timezone VARCHAR(64),
  full_name VARCHAR(256),
  email_address VARCHAR(256),
  organization VARCHAR(256),
  organizational_role VARCHAR(256),
  PRIMARY KEY (user_id),
  UNIQUE KEY guacamole_user_single_entity (entity_id),
  CONSTRAINT guacamole_user_entity FOREIGN KEY (entity_id)
    REFERENCES guacamole_entity (entity_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_user_group (
  user_group_id INT NOT NULL AUTO_INCREMENT,
  entity_id INT NOT NULL,
  disabled BOOLEAN NOT NULL DEFAULT 0,
  PRIMARY KEY (user_group_id),
  UNIQUE KEY guacamole_user_group_single_entity (entity_id),
  CONSTRAINT guacamole_user_group_entity FOREIGN KEY (entity_id)
    REFERENCES guacamole_entity (entity_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_user_group_member (
  user_group_id INT NOT NULL,
  member_entity_id INT NOT NULL,
  PRIMARY KEY (user_group_id, member_entity_id),
  CONSTRAINT guacamole_user_group_member_parent_id FOREIGN KEY (user_group_id)
    REFERENCES guacamole_user_group (user_group_id) ON DELETE CASCADE,
  CONSTRAINT guacamole_user_group_member_entity_id FOREIGN KEY (member_entity_id)
    REFERENCES guacamole_entity (entity_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_sharing_profile (
  sharing_profile_id INT NOT NULL AUTO_INCREMENT,
  sharing_profile_name VARCHAR(128) NOT NULL,
  primary_connection_id INT NOT NULL,
  PRIMARY KEY (sharing_profile_id),
  UNIQUE KEY sharing_profile_name_primary (sharing_profile_name, primary_connection_id),
  CONSTRAINT guacamole_sharing_profile_ibfk_1 FOREIGN KEY (primary_connection_id)
    REFERENCES guacamole_connection (connection_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_user_attribute (
  user_id INT NOT NULL,
  attribute_name VARCHAR(128) NOT NULL,
  attribute_value VARCHAR(4096) NOT NULL,
  PRIMARY KEY (user_id, attribute_name),
  CONSTRAINT guacamole_user_attribute_ibfk_1 FOREIGN KEY (user_id)
    REFERENCES guacamole_user (user_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_user_group_attribute (
  user_group_id INT NOT NULL,
  attribute_name VARCHAR(128) NOT NULL,
  attribute_value VARCHAR(4096) NOT NULL,
  PRIMARY KEY (user_group_id, attribute_name),
  CONSTRAINT guacamole_user_group_attribute_ibfk_1 FOREIGN KEY (user_group_id)
    REFERENCES guacamole_user_group (user_group_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_connection_attribute (
  connection_id INT NOT NULL,
  attribute_name VARCHAR(128) NOT NULL,
  attribute_value VARCHAR(4096) NOT NULL,
  PRIMARY KEY (connection_id, attribute_name),
  CONSTRAINT guacamole_connection_attribute_ibfk_1 FOREIGN KEY (connection_id)
    REFERENCES guacamole_connection (connection_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_connection_group_attribute (
  connection_group_id INT NOT NULL,
  attribute_name VARCHAR(128) NOT NULL,
  attribute_value VARCHAR(4096) NOT NULL,
  PRIMARY KEY (connection_group_id, attribute_name),
  CONSTRAINT guacamole_connection_group_attribute_ibfk_1 FOREIGN KEY (connection_group_id)
    REFERENCES guacamole_connection_group (connection_group_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_sharing_profile_attribute (
  sharing_profile_id INT NOT NULL,
  attribute_name VARCHAR(128) NOT NULL,
  attribute_value VARCHAR(4096) NOT NULL,
  PRIMARY KEY (sharing_profile_id, attribute_name),
  CONSTRAINT guacamole_sharing_profile_attribute_ibfk_1 FOREIGN KEY (sharing_profile_id)
    REFERENCES guacamole_sharing_profile (sharing_profile_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_connection_parameter (
  connection_id INT NOT NULL,
  parameter_name VARCHAR(128) NOT NULL,
  parameter_value VARCHAR(4096) NOT NULL,
  PRIMARY KEY (connection_id, parameter_name),
  CONSTRAINT guacamole_connection_parameter_ibfk_1 FOREIGN KEY (connection_id)
    REFERENCES guacamole_connection (connection_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_sharing_profile_parameter (
  sharing_profile_id INT NOT NULL,
  parameter_name VARCHAR(128) NOT NULL,
  parameter_value VARCHAR(4096) NOT NULL,
  PRIMARY KEY (sharing_profile_id, parameter_name),
  CONSTRAINT guacamole_sharing_profile_parameter_ibfk_1 FOREIGN KEY (sharing_profile_id)
    REFERENCES guacamole_sharing_profile (sharing_profile_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_connection_permission (
  entity_id INT NOT NULL,
  connection_id INT NOT NULL,
  permission ENUM('READ', 'UPDATE', 'DELETE', 'ADMINISTER') NOT NULL,
  PRIMARY KEY (entity_id, connection_id, permission),
  CONSTRAINT guacamole_connection_permission_ibfk_1 FOREIGN KEY (connection_id)
    REFERENCES guacamole_connection (connection_id) ON DELETE CASCADE,
  CONSTRAINT guacamole_connection_permission_entity FOREIGN KEY (entity_id)
    REFERENCES guacamole_entity (entity_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_connection_group_permission (
  entity_id INT NOT NULL,
  connection_group_id INT NOT NULL,
  permission ENUM('READ', 'UPDATE', 'DELETE', 'ADMINISTER') NOT NULL,
  PRIMARY KEY (entity_id, connection_group_id, permission),
  CONSTRAINT guacamole_connection_group_permission_ibfk_1 FOREIGN KEY (connection_group_id)
    REFERENCES guacamole_connection_group (connection_group_id) ON DELETE CASCADE,
  CONSTRAINT guacamole_connection_group_permission_entity FOREIGN KEY (entity_id)
    REFERENCES guacamole_entity (entity_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_sharing_profile_permission (
  entity_id INT NOT NULL,
  sharing_profile_id INT NOT NULL,
  permission ENUM('READ', 'UPDATE', 'DELETE', 'ADMINISTER') NOT NULL,
  PRIMARY KEY (entity_id, sharing_profile_id, permission),
  CONSTRAINT guacamole_sharing_profile_permission_ibfk_1 FOREIGN KEY (sharing_profile_id)
    REFERENCES guacamole_sharing_profile (sharing_profile_id) ON DELETE CASCADE,
  CONSTRAINT guacamole_sharing_profile_permission_entity FOREIGN KEY (entity_id)
    REFERENCES guacamole_entity (entity_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_system_permission (
  entity_id INT NOT NULL,
  permission ENUM('CREATE_CONNECTION', 'CREATE_CONNECTION_GROUP', 'CREATE_SHARING_PROFILE',
                  'CREATE_USER', 'CREATE_USER_GROUP', 'ADMINISTER') NOT NULL,
  PRIMARY KEY (entity_id, permission),
  CONSTRAINT guacamole_system_permission_entity FOREIGN KEY (entity_id)
    REFERENCES guacamole_entity (entity_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_user_permission (
  entity_id INT NOT NULL,
  affected_user_id INT NOT NULL,
  permission ENUM('READ', 'UPDATE', 'DELETE', 'ADMINISTER') NOT NULL,
  PRIMARY KEY (entity_id, affected_user_id, permission),
  CONSTRAINT guacamole_user_permission_ibfk_1 FOREIGN KEY (affected_user_id)
    REFERENCES guacamole_user (user_id) ON DELETE CASCADE,
  CONSTRAINT guacamole_user_permission_entity FOREIGN KEY (entity_id)
    REFERENCES guacamole_entity (entity_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_user_group_permission (
  entity_id INT NOT NULL,
  affected_user_group_id INT NOT NULL,
  permission ENUM('READ', 'UPDATE', 'DELETE', 'ADMINISTER') NOT NULL,
  PRIMARY KEY (entity_id, affected_user_group_id, permission),
  CONSTRAINT guacamole_user_group_permission_affected_user_group FOREIGN KEY
    (affected_user_group_id) REFERENCES guacamole_user_group (user_group_id) ON DELETE CASCADE,
  CONSTRAINT guacamole_user_group_permission_entity FOREIGN KEY (entity_id)
    REFERENCES guacamole_entity (entity_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_connection_history (
  history_id INT NOT NULL AUTO_INCREMENT,
  user_id INT DEFAULT NULL,
  username VARCHAR(128) NOT NULL,
  remote_host VARCHAR(256) DEFAULT NULL,
  connection_id INT DEFAULT NULL,
  connection_name VARCHAR(128) NOT NULL,
  sharing_profile_id INT DEFAULT NULL,
  sharing_profile_name VARCHAR(128) DEFAULT NULL,
  start_date DATETIME NOT NULL,
  end_date DATETIME DEFAULT NULL,
  PRIMARY KEY (history_id),
  KEY user_id (user_id),
  KEY connection_id (connection_id),
  KEY sharing_profile_id (sharing_profile_id),
  KEY start_date (start_date),
  KEY end_date (end_date),
  KEY connection_start_date (connection_id, start_date),
  CONSTRAINT guacamole_connection_history_ibfk_1 FOREIGN KEY (user_id)
    REFERENCES guacamole_user (user_id) ON DELETE SET NULL,
  CONSTRAINT guacamole_connection_history_ibfk_2 FOREIGN KEY (connection_id)
    REFERENCES guacamole_connection (connection_id) ON DELETE SET NULL,
  CONSTRAINT guacamole_connection_history_ibfk_3 FOREIGN KEY (sharing_profile_id)
    REFERENCES guacamole_sharing_profile (sharing_profile_id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_user_history (
  history_id INT NOT NULL AUTO_INCREMENT,
  user_id INT DEFAULT NULL,
  username VARCHAR(128) NOT NULL,
  remote_host VARCHAR(256) DEFAULT NULL,
  start_date DATETIME NOT NULL,
  end_date DATETIME DEFAULT NULL,
  PRIMARY KEY (history_id),
  KEY user_id (user_id),
  KEY start_date (start_date),
  KEY end_date (end_date),
  KEY user_start_date (user_id, start_date),
  CONSTRAINT guacamole_user_history_ibfk_1 FOREIGN KEY (user_id)
    REFERENCES guacamole_user (user_id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE guacamole_user_password_history (
  password_history_id INT NOT NULL AUTO_INCREMENT,
  user_id INT NOT NULL,
  password_hash BINARY(32) NOT NULL,
  password_salt BINARY(32),
  password_date DATETIME NOT NULL,
  PRIMARY KEY (password_history_id),
  KEY user_id (user_id),
  CONSTRAINT guacamole_user_password_history_ibfk_1 FOREIGN KEY (user_id)
    REFERENCES guacamole_user (user_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
