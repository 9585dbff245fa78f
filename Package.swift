// swift-tools-version:6.1

import PackageDescription

let package = Package(
    name: "Octopus",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Octopus", targets: ["Octopus"]),
        .library(name: "OctopusLog", targets: ["OctopusLog"]),
        .library(name: "OctopusConfig", targets: ["OctopusConfig"]),
        .library(name: "OctopusSchedule", targets: ["OctopusSchedule"]),
        .library(name: "OctopusRPC", targets: ["OctopusRPC"]),
        .library(name: "OctopusCluster", targets: ["OctopusCluster"]),
        .executable(name: "octopus", targets: ["OctopusCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        // zlib through pkg-config (Debian: libz-dev). Used by the archiver.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["libz-dev"])]
        ),
        // What Glibc's Swift module does not expose (renameat2, and later close_range, PR_SET_PDEATHSIG, pidfd_open).
        .target(name: "CShims"),
        // POSIX processes: spawning on one long-lived thread, reaping, pid files with locks, /proc.
        .target(name: "OctopusSystem", dependencies: ["CShims"]),
        // Configuration values with their origin, YAML/JSON loading, deep merge, strict reading.
        .target(
            name: "OctopusConfig",
            dependencies: [.product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "OctopusLog",
            dependencies: [
                "OctopusConfig",
                "CZlib",
                "CShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Cron and interval schedules, Subscriptions, the Scheduler (the timing authority) and its Dispatcher seam.
        .target(
            name: "OctopusSchedule",
            dependencies: [
                "OctopusConfig",
                "OctopusSystem",
                "CShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Frames, connections, calls with ids and deadlines, typed actions, the master/branch directory, error codes.
        // Knows nothing of processes, logging configuration or schedules.
        .target(
            name: "OctopusRPC",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The process model: master, agent, workers; supervision, messenger, schedule dispatch, the control socket.
        .target(
            name: "OctopusCluster",
            dependencies: [
                "OctopusConfig",
                "OctopusLog",
                "OctopusSchedule",
                "OctopusRPC",
                "OctopusSystem",
                "CShims",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "Octopus",
            dependencies: [
                "OctopusConfig",
                "OctopusLog",
                "OctopusSchedule",
                "OctopusRPC",
                "OctopusCluster",
                "OctopusSystem",
                "CShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "OctopusCLI",
            dependencies: [
                "Octopus",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "LogBenchmark",
            dependencies: ["OctopusLog", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/LogBenchmark"
        ),
        .executableTarget(
            name: "ScheduleBenchmark",
            dependencies: ["OctopusSchedule", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/ScheduleBenchmark"
        ),
        .executableTarget(
            name: "RPCBenchmark",
            dependencies: [
                "OctopusRPC", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/RPCBenchmark"
        ),
        // A real Octopus application whose behaviour the cluster tests switch with environment variables.
        .executableTarget(
            name: "ClusterFixture",
            dependencies: ["Octopus", "TestSupport"],
            path: "Tests/ClusterFixture"
        ),
        // The README's Swift examples, each block a whole file (ReadmeTests checks they match), compiled as a reader's
        // package compiles them: `swift build` fails when the README stops being true.
        .executableTarget(
            name: "ReadmeExamples",
            dependencies: ["Octopus"],
            path: "Tests/ReadmeExamples"
        ),
        .executableTarget(
            name: "ClusterBenchmark",
            dependencies: ["Octopus", "OctopusSystem"],
            path: "Benchmarks/ClusterBenchmark"
        ),
        // Helpers shared by the test targets (log line collection, bounded waiting).
        .target(
            name: "TestSupport",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "OctopusConfigTests", dependencies: ["OctopusConfig"]),
        .testTarget(
            name: "OctopusLogTests",
            dependencies: ["OctopusLog", "OctopusConfig", "TestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "OctopusScheduleTests",
            dependencies: [
                "OctopusSchedule", "OctopusConfig", "TestSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["Cases"]
        ),
        .testTarget(
            name: "OctopusRPCTests",
            dependencies: [
                "OctopusRPC",
                "CShims",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "OctopusClusterTests",
            dependencies: [
                "ClusterFixture", "OctopusCLI", "Octopus", "OctopusCluster", "OctopusRPC", "OctopusSchedule", "OctopusSystem",
                "TestSupport", .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "OctopusCLITests",
            dependencies: ["OctopusCLI", "OctopusLog", "ReadmeExamples", "TestSupport", .product(name: "Logging", package: "swift-log")]
        ),
    ]
)

for target in package.targets where target.type != .system && !["CShims", "ReadmeExamples"].contains(target.name) {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
