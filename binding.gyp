{
  "targets": [
    {
      "target_name": "edgepoll",
      "conditions": [
        ["OS!='linux'", { "type": "none" }],
        ["OS=='linux'", {
          "sources": [
            "<!@(node -e \"const fs=require('fs');for(const f of fs.readdirSync('native').sort())if(f.endsWith('.cc'))console.log('native/'+f)\")"
          ],
          "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
          "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
          "cflags!": ["-fno-exceptions"],
          "cflags_cc!": ["-fno-exceptions", "-std=gnu++1y", "-std=gnu++17"],
          "cflags": ["-Wall", "-Wextra", "-fvisibility=hidden", "-O2"],
          "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-fvisibility=hidden", "-fno-exceptions", "-O2", "-Wno-unused-parameter"],
          "ldflags": ["-pthread"]
        }]
      ]
    },
    {
      "target_name": "edgepoll_loadgen",
      "conditions": [
        ["OS!='linux'", { "type": "none" }],
        ["OS=='linux'", {
          "sources": [
            "<!@(node -e \"const fs=require('fs');for(const f of fs.readdirSync('native/loadgen').sort())if(f.endsWith('.cc'))console.log('native/loadgen/'+f)\")"
          ],
          "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
          "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
          "cflags!": ["-fno-exceptions"],
          "cflags_cc!": ["-fno-exceptions", "-std=gnu++1y", "-std=gnu++17"],
          "cflags": ["-Wall", "-Wextra", "-fvisibility=hidden", "-O2"],
          "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-fvisibility=hidden", "-fno-exceptions", "-O2", "-Wno-unused-parameter"],
          "ldflags": ["-pthread"]
        }]
      ]
    }
  ]
}
