// swift-tools-version:6.1
// An Octopus application: workers serve HTTP with Hummingbird on one port (a listening socket the master opens and
// hands down), an access log through Octopus's logging, a Subscription, and messenger calls between processes.
// A package of its own that depends on Octopus by path, so that Hummingbird never slows Octopus's own build.
import PackageDescription

let package = Package(
    name: "Shop",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Octopus", path: "../.."),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "Shop",
            dependencies: [
                .product(name: "Octopus", package: "Octopus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        )
    ]
)
