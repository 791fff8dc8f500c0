# escape=`

FROM mcr.microsoft.com/windows/servercore:ltsc2022
WORKDIR C:\app
COPY C:\src C:\dst
COPY --chown=ContainerUser ["C:\\Program Files\\tool\\bin\\", "C:\\tools\\"]
RUN powershell -Command `
    $ErrorActionPreference = 'Stop'; `
    Write-Host "hello \ world"
ENV PATH=C:\tools;C:\Windows\System32
CMD ["C:\\tools\\app.exe", "--serve"]
