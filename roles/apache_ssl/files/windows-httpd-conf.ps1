# Uncomment (or add) the LoadModule / Include lines that enable mod_ssl in httpd.conf, idempotently.
param(
    [Parameter(Mandatory = $true)][string]$Path,
    [Parameter(Mandatory = $true)][object[]]$Lines
)
$ErrorActionPreference = 'Stop'
$content = [System.IO.File]::ReadAllLines($Path)
$result = [System.Collections.Generic.List[string]]::new()
$result.AddRange([string[]]$content)
foreach ($wanted in $Lines) {
    $index = -1
    for ($i = 0; $i -lt $result.Count; $i++) {
        if ($result[$i] -match $wanted.regexp) { $index = $i; break }
    }
    if ($index -ge 0) {
        if ($result[$index] -ne $wanted.line) { $result[$index] = $wanted.line; $Ansible.Changed = $true }
    }
    else {
        $result.Add($wanted.line); $Ansible.Changed = $true
    }
}
if ($Ansible.Changed -and -not $Ansible.CheckMode) {
    Copy-Item -LiteralPath $Path -Destination "$Path.certfleet-backup" -Force
    [System.IO.File]::WriteAllLines($Path, $result)
}
