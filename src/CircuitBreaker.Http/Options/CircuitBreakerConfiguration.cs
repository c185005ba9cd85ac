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
        FindUnknownKeys(section, typeof(CircuitBreakerOptions), allowClients ? ClientsKey : null, errors);
        if (errors.Count > before)
        {
            return;
        }

        try
        {
            // Unknown keys were reported above; the binder still reports values that cannot be converted.
            section.Bind(options);
        }
        catch (InvalidOperationException ex)
        {
            errors.Add($"{SectionPath(section)}: {ex.Message}");
        }
    }

    /// <summary>
    /// Reports every key of <paramref name="section"/> that <paramref name="type"/> has no bindable property for,
    /// with its full path, looking into nested options and into dictionaries of options (such as Hosts).
    /// </summary>
    private static void FindUnknownKeys(IConfiguration section, Type type, string? extraKey, List<string> errors)
    {
        var properties = BindableProperties(type);
        foreach (var child in section.GetChildren())
        {
            if (extraKey is not null && string.Equals(child.Key, extraKey, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            if (!properties.TryGetValue(child.Key, out var property))
            {
                errors.Add($"{child.Path}: unknown configuration key '{child.Key}'. Known keys: {string.Join(", ", properties.Keys.Order(StringComparer.Ordinal))}.");
            }
            else if (DictionaryValueType(property.PropertyType) is { } valueType)
            {
                if (IsOptionsType(valueType))
                {
                    foreach (var entry in child.GetChildren())
                    {
                        FindUnknownKeys(entry, valueType, extraKey: null, errors);
                    }
                }
            }
            else if (IsOptionsType(property.PropertyType))
            {
                FindUnknownKeys(child, property.PropertyType, extraKey: null, errors);
            }
        }
    }

    private static Dictionary<string, PropertyInfo> BindableProperties(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => !typeof(Delegate).IsAssignableFrom(p.PropertyType)) // code-only, such as Fallback.OnOpen
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);

    private static bool IsOptionsType(Type type) => type.IsClass && type != typeof(string) && type != typeof(Uri);

    private static Type? DictionaryValueType(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IDictionary<,>) ? type.GetGenericArguments()[1] : null;

    private static string SectionPath(IConfiguration section) =>
        section is IConfigurationSection s ? s.Path : "configuration";
}
