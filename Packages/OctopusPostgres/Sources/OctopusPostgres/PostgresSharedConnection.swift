public import Logging
public import Octopus
public import PostgresNIO
import Synchronization

/// A cluster client's real long connection to PostgreSQL: `subscribe(channel)` is `LISTEN`, values are the payloads
/// of `NOTIFY`, `publish` is `pg_notify`, and `invoke(PostgresSharedConnection.Query.self, …)` runs a parameterized
/// query. Behind a ``ClusterClient`` the whole cluster holds **one** connection to the server (the leader's — the
/// agent's in a cluster), however many workers listen or query.
///
/// ```swift
/// let database = app.clusterClient("postgres") {
///     try await PostgresSharedConnection.connect(
///         .init(host: "127.0.0.1", port: 5432, username: "shop", password: nil, database: "shop", tls: .disable),
///         applicationName: "shop")
/// }
/// app.workers { context in
///     for await event in database.subscribe("prices") { … }        // LISTEN prices, once for the whole cluster
///     let rows = try await database.invoke(PostgresSharedConnection.Query.self,
///         .init("SELECT name FROM items WHERE id = $1", [.int(42)]), idempotent: true)
/// }
/// ```
public final class PostgresSharedConnection: SharedConnection {
    public typealias Value = String
    public typealias Values = AsyncThrowingStream<String, any Error>

    public let connection: PostgresConnection
    private let logger: Logger

    init(connection: PostgresConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Connects; `applicationName` is what `pg_stat_activity.application_name` shows for the connection.
    public static func connect(
        _ configuration: PostgresConnection.Configuration, applicationName: String? = nil,
        logger: Logger = Logger(label: "octopus.postgres")
    ) async throws -> PostgresSharedConnection {
        var configuration = configuration
        if let applicationName { configuration.options.additionalStartupParameters.append(("application_name", applicationName)) }
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        return PostgresSharedConnection(connection: connection, logger: logger)
    }

    /// `LISTEN channel` until the stream is dropped (then `UNLISTEN`). A lost connection ends the stream with its
    /// error: the cluster client reports 30017 and subscribes again (a leader that cannot, because the server is
    /// gone, keeps trying with backoff).
    public func subscribe(_ channel: String) async throws -> Values {
        let (stream, continuation) = Values.makeStream()
        let started = AsyncStream.makeStream(of: Result<Void, any Error>.self)
        let listening = Task { [connection] in
            do {
                try await connection.listen(on: channel) { notifications in
                    started.continuation.yield(.success(()))
                    for try await notification in notifications { continuation.yield(notification.payload) }
                }
                continuation.finish()
            } catch {
                started.continuation.yield(.failure(error))
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in listening.cancel() }
        // The LISTEN is in force (or failed) before the subscription counts as made.
        for await outcome in started.stream {
            try outcome.get()
            break
        }
        return stream
    }

    /// `SELECT pg_notify(channel, value)`.
    public func publish(_ value: String, to channel: String) async throws {
        var binds = PostgresBindings()
        binds.append(channel)
        binds.append(value)
        try await serverErrors {
            try await connection.query(PostgresQuery(unsafeSQL: "SELECT pg_notify($1, $2)", binds: binds), logger: logger)
        }
    }

    public func methods(_ handlers: RPCHandlers) {
        handlers.register(Query.self) { [connection, logger] query in
            var binds = PostgresBindings(capacity: query.parameters.count)
            for parameter in query.parameters {
                switch parameter {
                case .null: binds.appendNull()
                case .int(let value): binds.append(value)
                case .double(let value): binds.append(value)
                case .bool(let value): binds.append(value)
                case .text(let value): binds.append(value)
                }
            }
            return try await serverErrors {
                let rows = try await connection.query(PostgresQuery(unsafeSQL: query.sql, binds: binds), logger: logger)
                var result = QueryResult(columns: [], rows: [])
                for try await row in rows {
                    if result.columns.isEmpty { result.columns = row.map(\.columnName) }
                    result.rows.append(row.map(SQLValue.init(cell:)))
                }
                return result
            }
        }
    }

    public func close() async {
        try? await connection.close()
    }

    /// What the server said when it refused something: its SQLSTATE and message (a `PSQLError`'s description hides
    /// them; they travel to the process that invoked, and never the query's parameters).
    public struct ServerError: Error, Sendable, CustomStringConvertible {
        public var sqlState: String
        public var message: String
        public var description: String { "PostgreSQL error \(sqlState): \(message)" }
    }

    // MARK: Queries

    /// Runs a parameterized query (`$1`, `$2`, …) on the leader's connection; the answer is the rows.
    public struct Query: RPCAction {
        public struct Input: Codable, Sendable {
            public var sql: String
            public var parameters: [SQLValue]

            public init(_ sql: String, _ parameters: [SQLValue] = []) {
                self.sql = sql
                self.parameters = parameters
            }

            private enum CodingKeys: String, CodingKey { case sql, parameters }

            // A null in an array is JSON's null (an Optional on the wire: a non-optional value cannot be decoded from
            // null).
            public init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                sql = try container.decode(String.self, forKey: .sql)
                parameters = try container.decode([SQLValue?].self, forKey: .parameters).map { $0 ?? .null }
            }

            public func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(sql, forKey: .sql)
                try container.encode(parameters.map(\.optional), forKey: .parameters)
            }
        }
        public typealias Output = QueryResult
        public static let name = "postgres.query"
    }

    public struct QueryResult: Codable, Sendable, Equatable {
        public var columns: [String]
        public var rows: [[SQLValue]]

        private enum CodingKeys: String, CodingKey { case columns, rows }

        public init(columns: [String], rows: [[SQLValue]]) {
            self.columns = columns
            self.rows = rows
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            columns = try container.decode([String].self, forKey: .columns)
            rows = try container.decode([[SQLValue?]].self, forKey: .rows).map { $0.map { $0 ?? .null } }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(columns, forKey: .columns)
            try container.encode(rows.map { $0.map(\.optional) }, forKey: .rows)
        }
    }

    /// A parameter or a cell: JSON's values (a cell of a type without one here comes as its text, or null).
    public enum SQLValue: Codable, Sendable, Hashable {
        case null
        case int(Int)
        case double(Double)
        case bool(Bool)
        case text(String)

        /// nil for `.null` (how a null travels in JSON arrays).
        var optional: SQLValue? { self == .null ? nil : self }

        init(cell: PostgresCell) {
            guard cell.bytes != nil else {
                self = .null
                return
            }
            switch cell.dataType {
            case .int2, .int4, .int8: self = (try? cell.decode(Int.self)).map(SQLValue.int) ?? .null
            case .float4, .float8: self = (try? cell.decode(Double.self)).map(SQLValue.double) ?? .null
            case .bool: self = (try? cell.decode(Bool.self)).map(SQLValue.bool) ?? .null
            default:
                if let text = try? cell.decode(String.self) {
                    self = .text(text)
                } else if cell.format == .text, var bytes = cell.bytes, let text = bytes.readString(length: bytes.readableBytes) {
                    self = .text(text)
                } else {
                    self = .null
                }
            }
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let value = try? container.decode(Int.self) {
                self = .int(value)
            } else if let value = try? container.decode(Double.self) {
                self = .double(value)
            } else if let value = try? container.decode(Bool.self) {
                self = .bool(value)
            } else {
                self = .text(try container.decode(String.self))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .null: try container.encodeNil()
            case .int(let value): try container.encode(value)
            case .double(let value): try container.encode(value)
            case .bool(let value): try container.encode(value)
            case .text(let value): try container.encode(value)
            }
        }
    }
}

/// Runs `body`, turning the server's refusals into ``PostgresSharedConnection/ServerError``.
@discardableResult
func serverErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as PSQLError {
        if let state = error.serverInfo?[.sqlState], let message = error.serverInfo?[.message] {
            throw PostgresSharedConnection.ServerError(sqlState: state, message: message)
        }
        throw error
    }
}
