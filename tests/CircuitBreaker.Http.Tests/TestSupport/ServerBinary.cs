namespace CircuitBreaker.Http.Tests.TestSupport;

/// <summary>
/// Finds a server program a test needs (Prometheus, Redis, ...). When it is missing the test is skipped with
/// a message saying what to install, so that <c>dotnet test</c> passes on a fresh machine; with the environment
/// variable <see cref="RequireVariable"/> set to 1 (as <c>.ci/run</c> does) a missing program fails the test
/// instead, so CI can never skip it silently.
/// </summary>
internal static class ServerBinary
{
    public const string RequireVariable = "CIRCUITBREAKER_REQUIRE_SERVERS";

    /// <summary>Returns the full path of <paramref name="name"/> on PATH, or skips (or fails, in CI) the calling test.</summary>
    public static string Require(string name, string debianPackage)
    {
        var found = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);
        if (found is not null)
        {
            return found;
        }

        var message = $"'{name}' is not installed: install the Debian package '{debianPackage}' (apt-get install {debianPackage}) to run this test.";
        if (Environment.GetEnvironmentVariable(RequireVariable) == "1")
        {
            Assert.Fail($"{message} {RequireVariable}=1 forbids skipping it.");
        }

        Skip.If(true, message);
        return null!;
    }
}
