// Package deps pins modules that packages under construction will import,
// so parallel work does not race on go.mod. Remove an import here once a
// real package imports the module.
package deps

import (
	_ "github.com/gin-gonic/gin"
	_ "github.com/glebarez/sqlite"
	_ "github.com/go-ego/gse"
	_ "github.com/gorilla/websocket"
	_ "github.com/open-dingtalk/dingtalk-stream-sdk-go/client"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/text/unicode/norm"
	_ "gorm.io/driver/mysql"
	_ "gorm.io/gorm"
)
