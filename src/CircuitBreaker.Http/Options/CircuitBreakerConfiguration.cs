using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http;

/// <summary>
/// Binds a configuration section onto the options of one client (or of every client): the section itself,
/// then its <c>Clients:{clientName}</c> overlay. Unknown keys and unconvertible values are reported as
/// <see cref="OptionsValidationException"/> naming the full key, never silently ignored.
/// </summary>
internal sealed class CircuitBreakerConfiguration : IConfigureNamedOptions<CircuitBreakerOptions>
{
    /// <summary>The section read by <c>AddCircuitBreaker()</c> without arguments.</summary>
    public const string DefaultSectionName = "CircuitBreaker";

    private const string ClientsKey = "Clients";

    private static readonly HashSet<string> ClientKeys = PropertyNames(typeof(CircuitBreakerOptions));
    private static readonly HashSet<string> HostKeys = PropertyNames(typeof(CircuitBreakerHostOptions));

    private readonly string? _clientName;

    /// <param name="clientName">The client to configure, or <see langword="null"/> for every client.</param>
    /// <param name="section">The section to bind; <see langword="null"/> when the app has no configuration.</param>
    public CircuitBreakerConfiguration(string? clientName, IConfiguration? section)
    {
        _clientName = clientName;
        Section = section;
    }

    /// <summary>The bound section, watched by the registry for reloads.</summary>
    public IConfiguration? Section { get; }

    public void Configure(CircuitBreakerOptions options) => Configure(Options.DefaultName, options);

    public void Configure(string? name, CircuitBreakerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        name ??= Options.DefaultName;
        if (Section is null || (_clientName is not null && _clientName != name))
        {
            return;
        }

        var errors = new List<string>();
        Bind(Section, options, allowClients: true, errors);
        if (!string.IsNullOrEmpty(name))
        {
            var clientSection = Section.GetSection(ClientsKey).GetSection(name);
            if (clientSection.Exists())
            {
                Bind(clientSection, options, allowClients: false, errors);
            }
        }

        if (errors.Count > 0)
        {
            throw new OptionsValidationException(name, typeof(CircuitBreakerOptions), errors);
        }
    }

    private static void Bind(IConfiguration section, CircuitBreakerOptions options, bool allowClients, List<string> errors)
    {
        var before = errors.Count;
        foreach (var child in section.GetChildren())
        {
            if (allowClients && string.Equals(child.Key, ClientsKey, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            if (!ClientKeys.Contains(child.Key))
            {
                errors.Add(UnknownKey(child, ClientKeys));
            }
            else if (string.Equals(child.Key, nameof(CircuitBreakerOptions.Hosts), StringComparison.OrdinalIgnoreCase))
            {
                foreach (var host in child.GetChildren())
                {
                    errors.AddRange(host.GetChildren().Where(k => !HostKeys.Contains(k.Key)).Select(k => UnknownKey(k, HostKeys)));
                }
            }
        }

        if (errors.Count > before)
        {
            return;
        }

        try
        {
            // Clients is skipped above and is not a property, so unknown-key errors from the binder are
            // impossible here; it still reports values that cannot be converted.
            section.Bind(options);
        }
        catch (InvalidOperationException ex)
        {
            errors.Add($"{SectionPath(section)}: {ex.Message}");
        }
    }

    private static string UnknownKey(IConfigurationSection key, HashSet<string> known) =>
        $"{key.Path}: unknown configuration key '{key.Key}'. Known keys: {string.Join(", ", known.Order(StringComparer.Ordinal))}.";

    private static string SectionPath(IConfiguration section) =>
        section is IConfigurationSection s ? s.Path : "configuration";

    private static HashSet<string> PropertyNames(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Select(p => p.Name)
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
}
