// swift-tools-version:6.1
// OctopusPostgres: a cluster client's real long connection to PostgreSQL (LISTEN/NOTIFY and parameterized queries on
// postgres-nio). A package of its own, so that Octopus's core never depends on postgres-nio or its TLS stack.
import PackageDescription

let package = Package(
    name: "OctopusPostgres",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "OctopusPostgres", targets: ["OctopusPostgres"])
    ],
    dependencies: [
        .package(name: "Octopus", path: "../.."),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(
            name: "OctopusPostgres",
            dependencies: [
                .product(name: "Octopus", package: "Octopus"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // An application with a PostgreSQL cluster client, for the tests (switched by environment variables).
        .executableTarget(
            name: "PostgresFixture",
            dependencies: ["OctopusPostgres", .product(name: "Octopus", package: "Octopus")]
        ),
        .testTarget(
            name: "OctopusPostgresTests",
            dependencies: [
                "OctopusPostgres", "PostgresFixture", .product(name: "Octopus", package: "Octopus"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
    ]
)
