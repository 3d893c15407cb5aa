// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Lethe",
    platforms: [.macOS(.v15)],  // Mutex and Atomic (Synchronization)
    products: [
        .executable(name: "lethe", targets: ["lethe"]),
        .library(name: "Parquet", targets: ["Parquet"]),
        .library(name: "LetheEngine", targets: ["LetheEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.1.0"),  // 4.x: jwt-kit 5 needs ≥ 4.1
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.0"),
        // TLS for SMTP (STARTTLS, smtps://) and `serve.tls`; already resolved through async-http-client.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        // `lethe serve` (issue 14): HTTP on Hummingbird 2 (without swift-configuration), Prometheus metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // `serve.oidc`: verifying OIDC JWTs against a JWKS file (LetheServer only).
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
    ],
    targets: [
        // System C libraries (Debian: zlib1g-dev, libzstd-dev, libsnappy-dev; installed by scripts/bootstrap).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CSnappy", path: "Sources/CSnappy", pkgConfig: "snappy", providers: [.apt(["libsnappy-dev"])]),
        // OpenSSL's libcrypto (Debian: libssl-dev): AES-256-GCM for crypto-shredding's per-value path (CLetheSeal).
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // libdeflate (Debian: libdeflate-dev): whole-buffer gzip decoding of objects up to a bound (issue 16).
        .systemLibrary(name: "CDeflate", path: "Sources/CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),

        .target(name: "CLetheSHA", cSettings: [.unsafeFlags(["-O2"])]),
        // The two-stage JSON field scan (AVX2 + PCLMULQDQ with a portable fallback chosen at run time).
        .target(name: "CLetheJSON", cSettings: [.unsafeFlags(["-O2"])]),
        // The multi-needle search of NeedleSet (Teddy over AVX2, sampled grams as the portable fallback; issue 16).
        .target(name: "CLetheNeedles", cSettings: [.unsafeFlags(["-O2"])]),
        // Seals and opens one `lethe:v1:` value in a call: its own AES-256-GCM on AES-NI (OpenSSL EVP without), base64url (SSSE3 or scalar).
        .target(name: "CLetheSeal", dependencies: ["COpenSSL"], cSettings: [.unsafeFlags(["-O2"])]),
        .target(
            name: "LetheCore",
            dependencies: [
                "CLetheSHA", "CLetheJSON", "CLetheSeal", "CLetheNeedles",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ], swiftSettings: strict),
        // Linux calls glibc declares only under _GNU_SOURCE (syncfs).
        .systemLibrary(name: "CLinux", path: "Sources/CLinux"),
        .target(name: "LetheStorage", dependencies: ["LetheCore", "CLinux"], swiftSettings: strict),
        .target(name: "Parquet", dependencies: ["CZlib", "CZstd", "CSnappy"], swiftSettings: strict),
        .target(name: "DeltaLake", dependencies: ["LetheCore", "LetheStorage", "Parquet"], swiftSettings: strict),
        .target(name: "LetheFormats", dependencies: ["LetheCore", "LetheStorage", "CZlib", "CDeflate", "Parquet"], swiftSettings: strict),
        .target(name: "LetheCatalog", dependencies: ["LetheCore"], swiftSettings: strict),
        // S3 and other AWS APIs (issue 13): Signature V4 first; the HTTP transport comes with the S3 store.
        .target(
            name: "LetheS3",
            dependencies: [
                "LetheCore", "LetheStorage",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ], swiftSettings: strict),
        .target(
            name: "LetheSQLite",
            dependencies: [
                "LetheCore", "LetheCatalog",
                .product(name: "GRDB", package: "GRDB.swift"),
                // The C API beside GRDB: batch inserts bind each row's values straight to the statement.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ], swiftSettings: strict),
        // The PostgreSQL state store (issue 13): `state: postgres://…`.
        .target(
            name: "LethePostgres",
            dependencies: [
                "LetheCore", "LetheCatalog",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: strict),
        .target(name: "LetheStream", dependencies: ["LetheCore", "CLetheJSON"], swiftSettings: strict),
        .target(
            name: "LetheEngine",
            dependencies: [
                "LetheCore", "LetheStorage", "LetheFormats", "LetheCatalog", "DeltaLake",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ], swiftSettings: strict),
        .target(
            name: "LetheRuntime",
            dependencies: [
                "LetheCore", "LetheStorage", "LetheCatalog", "LetheSQLite", "LetheS3", "LethePostgres", "LetheEngine", "LetheFormats",
                .product(name: "Logging", package: "swift-log"),
                "LetheStream", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ], swiftSettings: strict),
        // Notification transports (issue 14): webhooks (signed), SMTP, and a Redis client for the deletion-set sink.
        .target(
            name: "LetheNotify",
            dependencies: [
                "LetheCore", "LetheCatalog",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ], swiftSettings: strict),
        // `lethe serve` (issue 14): the HTTP API, auth, metrics, dashboard, and its background services.
        .target(
            name: "LetheServer",
            dependencies: [
                "LetheCore", "LetheCatalog", "LetheEngine", "LetheRuntime", "LetheNotify",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),  // the event loops as the concurrency executor of `lethe serve`
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),  // the dashboard's signed sessions
                .product(name: "JWTKit", package: "jwt-kit"),
            ], swiftSettings: strict),
        .executableTarget(
            name: "lethe",
            dependencies: [
                "LetheEngine", "LetheRuntime", "LetheStream", "LetheServer",
                "LetheCore", "LetheStorage", "LetheFormats",  // SampleLake (quickstart) writes the sample lake itself
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ], swiftSettings: strict + [.unsafeFlags(["-static-stdlib"], .when(platforms: [.linux], configuration: .release))],
            // A release `lethe` carries the Swift runtime and Foundation in itself: a command starts in
            // ~12 ms instead of ~20 (no symbol look-ups across a dozen shared libraries at load), which
            // `lethe filter` at the head of a pipeline pays once per stream (docs/benchmarks.md). The
            // module is compiled with the flag too: that makes it autolink Foundation's static
            // dependencies (CoreFoundation, ICU), which linking alone leaves out.
            linkerSettings: [.unsafeFlags(["-static-stdlib"], .when(platforms: [.linux], configuration: .release))]),

        .target(name: "LetheTestSupport", path: "Tests/Support", swiftSettings: strict),
        // The test kit (fault-injecting stores, contract suites): linked by test targets only.
        .target(
            name: "LetheTesting",
            dependencies: [
                "LetheCore", "LetheStorage", "LetheFormats", "Parquet", "LetheCatalog",
            ], swiftSettings: strict),
        .testTarget(
            name: "LetheCoreTests",
            dependencies: [
                "LetheCore", "CLetheSHA", "CLetheSeal", .product(name: "Crypto", package: "swift-crypto"),
            ], swiftSettings: strict),
        .testTarget(name: "LetheStorageTests", dependencies: ["LetheCore", "LetheStorage", "LetheTesting"], swiftSettings: strict),
        .testTarget(name: "ParquetTests", dependencies: ["LetheTestSupport", "Parquet"], swiftSettings: strict),
        .testTarget(
            name: "LetheFormatsTests",
            dependencies: [
                "LetheTestSupport", "LetheCore", "LetheStorage", "Parquet", "LetheFormats", "LetheTesting", "LetheCatalog",
            ], swiftSettings: strict),
        .testTarget(
            name: "LetheSQLiteTests",
            dependencies: [
                "LetheCore", "LetheCatalog", "LetheSQLite", "LetheTesting", .product(name: "GRDB", package: "GRDB.swift"),
            ], swiftSettings: strict),
        .testTarget(
            name: "LetheS3Tests",
            dependencies: [
                "LetheTestSupport", "LetheCore", "LetheStorage", "LetheTesting", "LetheFormats", "LetheEngine", "LetheRuntime", "LetheS3", "DeltaLake",
                "LetheCatalog", "LetheStream",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),  // S3EventIndexService tests
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: strict),
        .testTarget(
            name: "LethePostgresTests",
            dependencies: [
                "LetheTestSupport", "LetheCore", "LetheCatalog", "LethePostgres", "LetheTesting", "LetheEngine", "LetheRuntime", "LetheStream",
            ], swiftSettings: strict),
        .testTarget(name: "DeltaLakeTests", dependencies: ["LetheTestSupport", "LetheCore", "LetheStorage", "Parquet", "DeltaLake"], swiftSettings: strict),
        // Webhooks against a Python receiver, SMTP against aiosmtpd, the Redis sink against redis-server.
        .testTarget(
            name: "LetheNotifyTests",
            dependencies: [
                "LetheTestSupport", "LetheCore", "LetheCatalog", "LetheSQLite", "LetheNotify",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ], swiftSettings: strict),
        .testTarget(
            name: "LetheServerTests",
            dependencies: [
                "LetheTestSupport", "LetheCore", "LetheCatalog", "LetheEngine", "LetheRuntime", "LetheServer",
                .product(name: "JWTKit", package: "jwt-kit"),  // OIDCTests mint tokens with jwt-kit too
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ], swiftSettings: strict),
        .testTarget(name: "LetheStreamTests", dependencies: ["LetheCore", "LetheStream"], swiftSettings: strict),
        .testTarget(
            name: "LetheEngineTests",
            dependencies: [
                "LetheTestSupport", "LetheCore", "LetheStorage", "DeltaLake", "LetheFormats", "LetheCatalog", "LetheSQLite",
                "LetheStream", "LetheEngine", "LetheRuntime", "LetheTesting", "Parquet",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets for the byte parsers (docs/robustness.md), built only when LETHE_FUZZ is set:
// scripts/fuzz builds them with -sanitize=fuzzer,address in .build-fuzz.
if Context.environment["LETHE_FUZZ"] != nil {
    package.targets += [
        .target(name: "CLetheFuzz", path: "Fuzz/CLetheFuzz"),
        .executableTarget(
            name: "lethe-fuzz",
            dependencies: [
                "CLetheFuzz", "LetheCore", "LetheStorage", "LetheFormats", "Parquet", "DeltaLake",
            ], path: "Fuzz/lethe-fuzz", swiftSettings: strict + [.unsafeFlags(["-parse-as-library"])]),
    ]
}

// Benchmarks (docs/benchmarks.md), built only when LETHE_BENCH is set: one `lethe-bench` program with
// subcommands index, erase, parquet, delta, stream, verified, each in its own module.
if Context.environment["LETHE_BENCH"] != nil {
    package.targets += [
        .target(name: "BenchSupport", path: "Benchmarks/Support", swiftSettings: strict),
        .target(
            name: "IndexBenchmark",
            dependencies: [
                "LetheEngine", "LetheRuntime", "LetheCatalog", "LetheCore", "LetheFormats", "LetheStorage", "LetheSQLite", "BenchSupport",
            ], path: "Benchmarks/IndexBench", swiftSettings: strict),
        .target(
            name: "DeltaBenchmark",
            dependencies: [
                "LetheEngine", "LetheRuntime", "LetheCore", "LetheCatalog", "BenchSupport",
            ], path: "Benchmarks/DeltaBench", swiftSettings: strict),
        .target(
            name: "ParquetBenchmark",
            dependencies: [
                "Parquet", "LetheFormats", "LetheStorage", "LetheCore", "BenchSupport",
            ], path: "Benchmarks/ParquetBench", swiftSettings: strict),
        .target(
            name: "StreamBenchmark",
            dependencies: [
                "LetheEngine", "LetheRuntime", "LetheCatalog", "LetheCore", "BenchSupport",
            ], path: "Benchmarks/StreamBench", swiftSettings: strict),
        .target(
            name: "ProtectBenchmark",
            dependencies: [
                "LetheEngine", "LetheRuntime", "LetheCatalog", "LetheCore", "LetheStream", "BenchSupport",
            ], path: "Benchmarks/ProtectBench", swiftSettings: strict),
        .target(
            name: "VerifiedBenchmark",
            dependencies: [
                "IndexBenchmark", "LetheEngine", "LetheRuntime", "LetheCatalog", "LetheCore", "LetheFormats", "LetheStorage", "BenchSupport",
            ], path: "Benchmarks/VerifiedBench", swiftSettings: strict),
        .target(
            name: "S3Benchmark",
            dependencies: [
                "LetheEngine", "LetheRuntime", "LetheCore", "LetheStorage", "LetheS3", "LetheTesting", "BenchSupport",
            ], path: "Benchmarks/S3Bench", swiftSettings: strict),
        // `lethe serve` under load (issue 14): the release binary over HTTP on loopback.
        .target(
            name: "ServeBenchmark",
            dependencies: [
                "BenchSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ], path: "Benchmarks/ServeBench", swiftSettings: strict),
        .executableTarget(
            name: "lethe-bench",
            dependencies: [
                "IndexBenchmark", "DeltaBenchmark", "ParquetBenchmark", "StreamBenchmark", "VerifiedBenchmark", "S3Benchmark",
                "ServeBenchmark", "ProtectBenchmark", "LetheStorage",
            ], path: "Benchmarks/lethe-bench", swiftSettings: strict),
    ]
    package.products += [.executable(name: "lethe-bench", targets: ["lethe-bench"])]
}
