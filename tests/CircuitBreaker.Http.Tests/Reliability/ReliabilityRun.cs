using System.Globalization;

namespace CircuitBreaker.Http.Tests.Reliability;

/// <summary>
/// How much the reliability tests do. By default they fit a CI run on two cores; with
/// <c>CIRCUITBREAKER_LONG_TESTS=1</c> they run many more cases, requests and hosts. Each size can also be set
/// on its own, e.g. <c>CIRCUITBREAKER_MODEL_CASES=50000</c>.
/// </summary>
internal static class ReliabilityRun
{
    public const string LongVariable = "CIRCUITBREAKER_LONG_TESTS";

    public static bool Long => Environment.GetEnvironmentVariable(LongVariable) == "1";

    /// <summary>Cases of the state machine's model-based property test.</summary>
    public static int ModelCases => Size("CIRCUITBREAKER_MODEL_CASES", 10_000, 200_000);

    /// <summary>Requests of the chaos test.</summary>
    public static int ChaosRequests => Size("CIRCUITBREAKER_CHAOS_REQUESTS", 10_000, 100_000);

    /// <summary>Distinct hosts of the host flood.</summary>
    public static int FloodHosts => Size("CIRCUITBREAKER_FLOOD_HOSTS", 100_000, 1_000_000);

    private static int Size(string variable, int normal, int @long) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value
            : Long ? @long : normal;
}

/// <summary>
/// The reliability tests that measure the whole process (memory, threads, connections, unobserved exceptions), or
/// keep a core busy for seconds, run here: alone, after every parallel test, so that no other test's allocations
/// or threads blur their picture, and they do not starve the timing-sensitive tests of the parallel phase.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class WholeProcessGroup
{
    public const string Name = "Reliability: whole-process measurements, without parallel tests";
}
