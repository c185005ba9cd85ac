using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace CircuitBreaker.Demo.Scenario;

/// <summary>
/// Reads a <see cref="DrillScenario"/> from configuration: the <c>Drill:Scenario</c> section of appsettings.json,
/// or a scenario file of the same shape. A mistake is reported with the key that holds it.
/// </summary>
/// <example>
/// <code>
/// { "Name": "quick", "Services": [ "users", "orders" ], "Phases": [
///     { "Name": "steady", "Duration": "00:00:01", "Services": { "users": "healthy", "orders": "healthy" } },
///     { "Name": "users fail", "Duration": "00:00:01", "Services": {
///         "users": { "Behaviour": "error", "Status": 503, "FailureRate": 1 }, "orders": { "Behaviour": "slow", "Delay": "00:00:02" } } },
///     { "Name": "users down", "Duration": "00:00:01", "Services": { "users": "down" } } ] }
/// </code>
/// </example>
public static class ScenarioReader
{
    /// <summary>Reads a scenario file: a JSON object with the same shape as the <c>Drill:Scenario</c> section.</summary>
    /// <param name="path">The file.</param>
    public static DrillScenario FromFile(string path)
    {
        var root = new ConfigurationBuilder().AddJsonFile(Path.GetFullPath(path), optional: false, reloadOnChange: false).Build();
        return FromSection(root, Path.GetFileNameWithoutExtension(path));
    }

    /// <summary>Reads a scenario from a configuration section.</summary>
    /// <param name="section">The section (or root) holding <c>Name</c> and <c>Phases</c>.</param>
    /// <param name="defaultName">The name to use when the section has none.</param>
    public static DrillScenario FromSection(IConfiguration section, string defaultName)
    {
        var phases = section.GetSection("Phases").GetChildren().OrderBy(c => int.TryParse(c.Key, out var i) ? i : int.MaxValue).ToList();
        if (phases.Count == 0)
        {
            throw new ScenarioException($"{PathOf(section, "Phases")}: a scenario needs at least one phase.");
        }

        var read = phases.Select(ReadPhase).ToList();

        // Configuration sorts keys, so the order of the services comes from the optional "Services" list; the
        // services the phases name and the list does not follow in alphabetical order.
        var listed = section.GetSection("Services").GetChildren().OrderBy(c => int.TryParse(c.Key, out var i) ? i : int.MaxValue).Select(c => c.Value ?? "").ToList();
        var services = listed.Concat(read.SelectMany(p => p.Services.Keys).Order(StringComparer.Ordinal)).Distinct(StringComparer.Ordinal).ToList();
        if (services.Count == 0)
        {
            throw new ScenarioException($"{PathOf(section, "Phases")}: no phase names a service.");
        }

        foreach (var name in services)
        {
            CheckServiceName(name, PathOf(section, "Services"));
        }

        return new DrillScenario(section["Name"] ?? defaultName, services, read);
    }

    private static ScenarioPhase ReadPhase(IConfigurationSection phase)
    {
        var name = phase["Name"] ?? $"phase {phase.Key}";
        var duration = ReadTimeSpan(phase, "Duration") ?? throw new ScenarioException($"{phase.Path}:Duration is required, e.g. \"00:00:05\".");
        if (duration <= TimeSpan.Zero)
        {
            throw new ScenarioException($"{phase.Path}:Duration must be positive.");
        }

        var services = new Dictionary<string, ServiceBehaviour>(StringComparer.Ordinal);
        foreach (var service in phase.GetSection("Services").GetChildren())
        {
            CheckServiceName(service.Key, service.Path);
            services[service.Key] = ReadBehaviour(service);
        }

        return new ScenarioPhase(name, duration, services);
    }

    private static void CheckServiceName(string name, string path)
    {
        if (name.Length == 0 || !name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-'))
        {
            throw new ScenarioException($"{path}: '{name}' is not a service name: use lower-case letters, digits and '-', as it is used in URLs and client names.");
        }
    }

    private static ServiceBehaviour ReadBehaviour(IConfigurationSection service)
    {
        // "users": "down" is short for "users": { "Behaviour": "down" }.
        var kindText = service.Value ?? service["Behaviour"];
        if (!Enum.TryParse<BehaviourKind>(kindText, ignoreCase: true, out var kind) || !Enum.IsDefined(kind))
        {
            throw new ScenarioException($"{service.Path}: '{kindText}' is not a behaviour; use healthy, error, slow or down.");
        }

        switch (kind)
        {
            case BehaviourKind.Error:
                var status = ReadInt(service, "Status") ?? 503;
                var rate = ReadDouble(service, "FailureRate") ?? 1;
                if (status is < 400 or > 599)
                {
                    throw new ScenarioException($"{service.Path}:Status must be an error status, 400 to 599.");
                }

                if (rate is < 0 or > 1)
                {
                    throw new ScenarioException($"{service.Path}:FailureRate must be between 0 and 1.");
                }

                return new ServiceBehaviour(kind, status, rate);
            case BehaviourKind.Slow:
                var delay = ReadTimeSpan(service, "Delay") ?? throw new ScenarioException($"{service.Path}:Delay is required for a slow service, e.g. \"00:00:02\".");
                return new ServiceBehaviour(kind, Delay: delay);
            default:
                return new ServiceBehaviour(kind);
        }
    }

    private static TimeSpan? ReadTimeSpan(IConfiguration section, string key) =>
        section[key] is not { } text ? null
        : TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var value) ? value
        : throw new ScenarioException($"{PathOf(section, key)}: '{text}' is not a duration such as \"00:00:05\" or \"00:00:00.500\".");

    private static int? ReadInt(IConfiguration section, string key) =>
        section[key] is not { } text ? null
        : int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value
        : throw new ScenarioException($"{PathOf(section, key)}: '{text}' is not a whole number.");

    private static double? ReadDouble(IConfiguration section, string key) =>
        section[key] is not { } text ? null
        : double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value
        : throw new ScenarioException($"{PathOf(section, key)}: '{text}' is not a number.");

    private static string PathOf(IConfiguration section, string key) =>
        section is IConfigurationSection s && s.Path.Length > 0 ? $"{s.Path}:{key}" : key;
}

/// <summary>A scenario that cannot be read; the message names the key.</summary>
public sealed class ScenarioException : Exception
{
    public ScenarioException()
    {
    }

    public ScenarioException(string message)
        : base(message)
    {
    }

    public ScenarioException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
