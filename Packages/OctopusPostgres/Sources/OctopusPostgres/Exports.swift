// PostgresConnection.Configuration and the rest of postgres-nio come with OctopusPostgres.
@_exported public import PostgresNIO
