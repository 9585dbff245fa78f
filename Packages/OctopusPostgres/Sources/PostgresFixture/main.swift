// An Octopus application whose agent holds the cluster's one PostgreSQL connection (a cluster client), for the tests:
//
//   OCTOPUS_TEST_POSTGRES=postgres://USER@HOST:PORT/DATABASE   the server
//   FIXTURE_APPLICATION_NAME=NAME                              the connection's application_name
//
// Every worker appends "worker N PAYLOAD" to news.log for each NOTIFY on channel "news", and once ready runs
// `SELECT $1::int + 1` through the agent's connection and appends "worker N query 42"; the agent appends its pid to
// agent.pid when it starts.
import Foundation
import Octopus
import OctopusPostgres

#if canImport(Glibc)
import Glibc
#endif

let environment = ProcessInfo.processInfo.environment

func append(_ file: String, _ line: String) {
    let fd = open(file, O_WRONLY | O_APPEND | O_CREAT, 0o644)
    guard fd >= 0 else { return }
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

guard let url = environment["OCTOPUS_TEST_POSTGRES"].flatMap(URLComponents.init(string:)), let host = url.host else {
    FileHandle.standardError.write(Data("PostgresFixture: OCTOPUS_TEST_POSTGRES=postgres://USER@HOST:PORT/DATABASE is needed\n".utf8))
    exit(2)
}
let configuration = PostgresConnection.Configuration(
    host: host, port: url.port ?? 5432, username: url.user ?? "postgres", password: url.password,
    database: String(url.path.dropFirst()).isEmpty ? nil : String(url.path.dropFirst()), tls: .disable)

let app: OctopusApplication
do {
    app = try OctopusApplication(configDirectory: "config")
} catch {
    FileHandle.standardError.write(Data("\(error)\n".utf8))
    exit(2)
}

let database = app.clusterClient("postgres") {
    try await PostgresSharedConnection.connect(configuration, applicationName: environment["FIXTURE_APPLICATION_NAME"])
}

struct NewsReader: Service {
    let workerID: Int

    func run() async throws {
        let news = database.subscribe("news")
        await cancelWhenGracefulShutdown {
            for await event in news {
                switch event {
                case .value(let payload): append("news.log", "worker \(workerID) \(payload)")
                case .failed(let error): append("news.log", "worker \(workerID) failed \(error)")
                }
            }
        }
    }
}

app.workers { context in [NewsReader(workerID: context.workerID ?? 0)] }
app.didLoad { context in
    if context.role == .agent { append("agent.pid", "\(getpid())") }
}
app.didReady { context in
    guard context.role == .worker else { return }
    let result = try await database.invoke(
        PostgresSharedConnection.Query.self, .init("SELECT $1::int + 1 AS answer", [.int(41)]), idempotent: true)
    let answer = result.rows.first?.first.map { "\($0)" } ?? "none"
    append("news.log", "worker \(context.workerID ?? 0) query \(result.columns.first ?? "?")=\(answer)")
}

await app.run()
